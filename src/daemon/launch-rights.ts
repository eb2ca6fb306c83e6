/**
 * Who may start jobs of which handlers: viewers never; handlers in `restricted` only admins and
 * users granted them. The same rule answers a caller launching now (checkLaunchRights) and a
 * schedule firing later on its owner's behalf (firingGate), so a right taken away stops both.
 */
import type { AccessData, Role } from "../auth/access.js";
import { findUser, topRole } from "../auth/access.js";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { FiringGate } from "../scheduler/fire.js";

/** What deciding needs to know of someone. */
export interface LaunchRights {
  readonly user: string;
  readonly role: Role;
  /** Restricted handlers this user may launch. */
  readonly grants: ReadonlySet<string>;
}

/** Why `who` may not start jobs of each of `handlers`, or undefined when they may. */
export function launchRefusal(
  who: LaunchRights,
  handlers: readonly string[],
  restricted: ReadonlySet<string>,
): FerryError | undefined {
  if (who.role === "viewer")
    return new FerryError(ErrorCode.PermissionDenied, "your role may not launch jobs");
  if (who.role === "admin") return undefined;
  const needed = handlers.find((handler) => restricted.has(handler) && !who.grants.has(handler));
  if (needed === undefined) return undefined;
  return new FerryError(
    ErrorCode.PermissionDenied,
    `${needed} is restricted: an admin must grant it to you (ferry grant ${needed} ${who.user})`,
  );
}

/** Throws FERRY_PERMISSION_DENIED unless `caller` may start jobs of each of `handlers`. */
export function checkLaunchRights(
  caller: LaunchRights,
  handlers: readonly string[],
  restricted: ReadonlySet<string>,
): void {
  const refusal = launchRefusal(caller, handlers, restricted);
  if (refusal !== undefined) throw refusal;
}

/**
 * Why `owner` may not start `handler` now, from the access document, or undefined when it may. An
 * owner exists while it could sign in: it is a user with a role and at least one token (a user
 * whose tokens were all revoked, or whose roles were, counts as gone). Jobs without an owner were
 * made by the library on the store directly, not on a user's behalf: nothing to check.
 */
export function ownerRefusal(
  access: AccessData,
  owner: string | null,
  handler: string,
  restricted: ReadonlySet<string>,
): string | undefined {
  if (owner === null) return undefined;
  const user = findUser(access, owner);
  const role = user === undefined ? undefined : topRole(user);
  if (user === undefined || role === undefined || user.tokens.length === 0) {
    return "its owner is no longer a user with a valid token";
  }
  if (role === "viewer") return "its owner is a viewer, who may not launch jobs";
  const refusal = launchRefusal({ user: owner, role, grants: new Set(user.grants) }, [handler], restricted);
  return refusal === undefined ? undefined : `its owner is not granted ${handler}`;
}

/** The scheduler's gate: each schedule fires only while `ownerRefusal` finds nothing against it. */
export function firingGate(access: () => AccessData, restricted: ReadonlySet<string>): FiringGate {
  return (owner, handler) => ownerRefusal(access(), owner, handler, restricted);
}
