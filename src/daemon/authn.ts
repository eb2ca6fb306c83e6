/**
 * Who is calling: the token a call presents (`Authorization: Bearer T` or `x-api-key: T`) turned
 * into a Caller, or a refusal. Nothing is granted without a token. A good token always passes:
 * the bad-token limit only refuses bad tokens, so a flood of them from an address every local
 * process shares (127.0.0.1) cannot lock the admin out.
 *
 * With authentication off (allowed only on loopback) every call is one local admin.
 */
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Role } from "../auth/access.js";
import type { AccessControl, Session } from "../auth/access-control.js";
import { clientKey } from "../auth/client-address.js";
import type { FailedAuthLimiter } from "../auth/failed-auth-limiter.js";
import { ErrorCode, FerryError } from "../core/errors.js";

export interface Caller {
  readonly user: string;
  readonly role: Role;
  /** Restricted handlers (e.g. `sql.exec`) this caller may launch. */
  readonly grants: ReadonlySet<string>;
  /** Ties a long call (Wait, Watch) to the caller's token: the signal aborts when it is revoked. */
  hold(): Session;
}

/** The client's address, set by the server for each request (see server.ts). */
export const peerAddress = createContextKey<string>("unknown", { description: "the client's IP address" });

const BEARER = /^Bearer +([^\s]+) *$/i;

/** The token a call presents: "" when a header is there but malformed, undefined when none is. */
export function presentedToken(headers: Headers): string | undefined {
  const authorization = headers.get("authorization");
  if (authorization !== null) return BEARER.exec(authorization)?.[1] ?? "";
  return headers.get("x-api-key") ?? undefined;
}

const NEVER: Session = { signal: new AbortController().signal, release: () => undefined };

/** With authentication off: every caller is this one. */
export const LOCAL_ADMIN: Caller = { user: "local", role: "admin", grants: new Set(), hold: () => NEVER };

export function tokenAuthenticator(
  access: AccessControl,
  limiter: FailedAuthLimiter,
): (context: HandlerContext) => Caller {
  return (context) =>
    authenticateRequest(access, limiter, context.requestHeader, context.values.get(peerAddress));
}

/** The caller that a request's headers name, from `address`; throws when there is none. */
export function authenticateRequest(
  access: AccessControl,
  limiter: FailedAuthLimiter,
  headers: Headers,
  address: string,
): Caller {
  const token = presentedToken(headers);
  if (token === undefined) {
    throw new FerryError(
      ErrorCode.Unauthenticated,
      "a token is required: send Authorization: Bearer TOKEN or x-api-key: TOKEN",
    );
  }
  // The token is checked first, in constant time, whatever the address's record.
  const principal = access.authenticate(token);
  if (principal !== undefined) return { ...principal, hold: () => access.hold(principal) };
  const client = clientKey(address);
  const blockedMs = limiter.blockedForMs(client);
  if (blockedMs > 0) {
    throw new FerryError(
      ErrorCode.QuotaExceeded,
      `too many bad tokens from your address: try again in ${Math.ceil(blockedMs / 1000)} s`,
    );
  }
  limiter.recordFailure(client);
  throw new FerryError(ErrorCode.Unauthenticated, "the token is not valid");
}
