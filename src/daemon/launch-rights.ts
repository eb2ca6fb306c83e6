import { ErrorCode, FerryError } from "../core/errors.js";
import type { Caller } from "./authn.js";
import { denied } from "./rpc-errors.js";

/**
 * Whether `caller` may start jobs of each of `handlers` (by launching them, or by a schedule that
 * will): viewers never; handlers in `restricted` only admins and users granted them.
 */
export function checkLaunchRights(
  caller: Caller,
  handlers: readonly string[],
  restricted: ReadonlySet<string>,
): void {
  if (caller.role === "viewer") throw denied("launch jobs");
  if (caller.role === "admin") return;
  const needed = handlers.find((handler) => restricted.has(handler) && !caller.grants.has(handler));
  if (needed !== undefined) {
    throw new FerryError(
      ErrorCode.PermissionDenied,
      `${needed} is restricted: an admin must grant it to you (ferry grant ${needed} ${caller.user})`,
    );
  }
}
