/**
 * Callers for service tests over Connect's in-memory transport: an `x-test-user` header stands in
 * for the daemon's token check (src/daemon/authn.ts), choosing one of a few fixed users.
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { Role } from "../../src/auth/access.js";
import type { Caller } from "../../src/daemon/authn.js";
import { FerryError } from "../../src/index.js";

export function fakeCaller(user: string, role: Role, grants: string[] = []): Caller {
  return {
    user,
    role,
    grants: new Set(grants),
    hold: () => ({ signal: new AbortController().signal, release: () => undefined }),
  };
}

/** ann and bob submit (ann holds the grant `demo.restricted`), vic views, root administers. */
export const FAKE_CALLERS: Readonly<Record<string, Caller>> = {
  ann: fakeCaller("ann", "submitter", ["demo.restricted"]),
  bob: fakeCaller("bob", "submitter"),
  vic: fakeCaller("vic", "viewer"),
  root: fakeCaller("root", "admin"),
};

/** The caller named by the call's `x-test-user` header; FERRY_UNAUTHENTICATED for anyone else. */
export function callerOf(context: HandlerContext): Caller {
  const found = FAKE_CALLERS[context.requestHeader.get("x-test-user") ?? ""];
  if (found === undefined) throw new FerryError("FERRY_UNAUTHENTICATED", "no token");
  return found;
}

/** Call options that make the call as `user`. */
export const as = (user: string) => ({ headers: { "x-test-user": user } });
