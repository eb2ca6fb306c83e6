/**
 * Who may make the server read a body: an RPC's caller is authenticated from its headers alone,
 * before a byte of its body is buffered, so that a client without a good token cannot make the
 * daemon hold anything. The server answers a refusal at once and stops the client sending; a
 * call that is admitted is authenticated again by its handler, which then decides what the
 * caller may do.
 */
import type { IncomingHttpHeaders } from "node:http";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { FerryError } from "../core/errors.js";
import type { Caller } from "./authn.js";
import type { NodeRequest } from "./http-types.js";

export interface AdmissionRequest {
  /** The RPC's path, e.g. `/ferry.v1.JobService/Launch`. */
  readonly path: string;
  readonly headers: Headers;
  /** The client's address, from its socket. */
  readonly address: string;
}

/** Why a call is refused, or the caller it was admitted as (none for an open service). */
export interface Admission {
  readonly refusal?: FerryError;
  readonly caller?: Caller;
  /** A call to an open service, admitted without a token: its body gets the open limits. */
  readonly open?: boolean;
}

export type Admit = (request: AdmissionRequest) => Admission;

/**
 * Admits calls that present a good token (`authenticate` throws a FerryError otherwise), and
 * every call to `openServices` (e.g. `grpc.health.v1.Health`, open to load balancers), marked
 * open. Without `authenticate` (authentication off) every call is admitted, with no caller.
 */
export function tokenAdmission(
  authenticate: ((headers: Headers, address: string) => Caller) | undefined,
  openServices: readonly string[],
): Admit {
  const openPrefixes = openServices.map((service) => `/${service}/`);
  const OPEN: Admission = { open: true };
  const ANYONE: Admission = {};
  return ({ path, headers, address }) => {
    if (openPrefixes.some((prefix) => path.startsWith(prefix))) return OPEN;
    if (authenticate === undefined) return ANYONE;
    try {
      return { caller: authenticate(headers, address) };
    } catch (error) {
      if (error instanceof FerryError) return { refusal: error };
      throw error;
    }
  };
}

/** The caller a call was admitted as, for its handler (see `admittedOr`). */
export const admittedCaller = createContextKey<Caller | undefined>(undefined, {
  description: "the caller the server admitted the call as",
});

const ADMITTED = Symbol("ferry.admittedCaller");
type Admitted = NodeRequest & { [ADMITTED]?: Caller };

/** Keeps the caller a request was admitted as, for the server's `contextValues`. */
export function rememberAdmitted(request: NodeRequest, caller: Caller | undefined): void {
  if (caller !== undefined) (request as Admitted)[ADMITTED] = caller;
}

export function admittedOf(request: NodeRequest): Caller | undefined {
  return (request as Admitted)[ADMITTED];
}

/**
 * The caller of a call: the one admission found from the same headers, else `authenticate`'s.
 * A call is authenticated once, not once at the door and again in its handler.
 */
export function admittedOr(
  authenticate: (context: HandlerContext) => Caller,
): (context: HandlerContext) => Caller {
  return (context) => context.values.get(admittedCaller) ?? authenticate(context);
}

/** The headers a token rides in (authn.ts's `presentedToken`): all admission needs to read. */
const TOKEN_HEADERS = ["authorization", "x-api-key"] as const;

/**
 * A Node request's token headers as Fetch `Headers`. Only those: copying every header of every
 * request would cost each call for nothing.
 */
export function tokenHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const name of TOKEN_HEADERS) {
    const value = headers[name];
    if (typeof value !== "string") continue;
    try {
      out.set(name, value);
    } catch {
      // A value Fetch refuses is no token: as if it were not sent.
    }
  }
  return out;
}
