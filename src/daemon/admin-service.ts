/**
 * `ferry.v1.AdminService`: users, tokens and rights, and pausing queues (admins only); the
 * store's figures, its workers and the daemon's plugins (admins and viewers). The rules themselves (nobody grants to
 * itself, the last admin stays) are in src/auth/access.ts, where every daemon sharing the store
 * applies them alike. Queues and workers need no users: they answer with authentication off too.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import {
  createToken,
  findUser,
  grant,
  parseGrant,
  type Role,
  revoke,
  revokeTokens,
  type UserEntry,
} from "../auth/access.js";
import type { AccessControl } from "../auth/access-control.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import type { AdminService, UserSchema } from "../gen/ferry/v1/admin_pb.js";
import type { PluginStatus } from "../plugins/status.js";
import { statsToWire, workerToWire } from "../wire/rows.js";
import type { Caller } from "./authn.js";
import { answering, denied } from "./rpc-errors.js";

export interface AdminServiceOptions {
  readonly callerOf: (context: HandlerContext) => Caller;
  /** Undefined when authentication is off: there are no users to manage. */
  readonly access: AccessControl | undefined;
  /** The daemon's plugins as they are now; none when not given. */
  readonly plugins?: () => readonly PluginStatus[];
}

export function adminService(ferry: Ferry, options: AdminServiceOptions): ServiceImpl<typeof AdminService> {
  /** The caller, once its role is one of `roles`. */
  const allowed = (context: HandlerContext, roles: readonly Role[], what: string): Caller => {
    const caller = options.callerOf(context);
    if (!roles.includes(caller.role)) throw denied(what);
    return caller;
  };

  /** The caller and the access document, once the caller is an admin. */
  const admin = (context: HandlerContext): { caller: Caller; access: AccessControl } => {
    const caller = allowed(context, ["admin"], "manage users and tokens");
    if (options.access === undefined) {
      throw new FerryError(
        ErrorCode.InvalidArgument,
        "authentication is off on this daemon: there are no users or tokens to manage",
      );
    }
    return { caller, access: options.access };
  };

  return {
    createToken: (request, context) =>
      answering(async () => {
        const { access } = admin(context);
        const role = request.role === undefined ? undefined : parseGrant(request.role);
        if (role !== undefined && role.kind !== "role")
          throw invalidArgument("role must be admin, submitter or viewer");
        const now = Date.now();
        const minted = await access.change((data) => {
          const made = createToken(data, { user: request.user, role: role?.role, now });
          return { data: made.data, answer: made.minted };
        });
        return { user: request.user, token: minted.token, tokenId: minted.id };
      }),

    revokeToken: (request, context) =>
      answering(async () => {
        const { access } = admin(context);
        const revoked = await access.change((data) => {
          const after = revokeTokens(data, request.user);
          return { data: after.data, answer: after.revoked };
        });
        return { revoked };
      }),

    grant: (request, context) =>
      answering(async () => {
        const { caller, access } = admin(context);
        const data = await access.change((data) => {
          const next = grant(data, { by: caller.user, user: request.user, grant: request.grant });
          return { data: next, answer: next };
        });
        return userOut(findUser(data, request.user)!);
      }),

    revoke: (request, context) =>
      answering(async () => {
        const { access } = admin(context);
        const data = await access.change((data) => {
          const next = revoke(data, { user: request.user, grant: request.grant });
          return { data: next, answer: next };
        });
        return userOut(findUser(data, request.user)!);
      }),

    listUsers: (_request, context) =>
      answering(async () => {
        const { access } = admin(context);
        await access.refresh();
        return { users: access.data.users.map(userOut) };
      }),

    stats: (_request, context) =>
      answering(async () => {
        allowed(context, ["admin", "viewer"], "read the daemon's figures");
        return statsToWire(await ferry.stats());
      }),

    pauseQueue: (request, context) =>
      answering(async () => {
        allowed(context, ["admin"], "pause queues");
        await ferry.pauseQueue(request.queue);
        return { queue: request.queue, paused: true };
      }),

    resumeQueue: (request, context) =>
      answering(async () => {
        allowed(context, ["admin"], "resume queues");
        await ferry.resumeQueue(request.queue);
        return { queue: request.queue, paused: false };
      }),

    listWorkers: (_request, context) =>
      answering(async () => {
        allowed(context, ["admin", "viewer"], "list workers");
        const workers = [];
        for await (const worker of ferry.workers()) workers.push(workerToWire(worker));
        return { workers };
      }),

    listPlugins: (_request, context) =>
      answering(async () => {
        allowed(context, ["admin", "viewer"], "list plugins");
        const plugins = options.plugins?.() ?? [];
        return { plugins: plugins.map((plugin) => ({ ...plugin, handlers: [...plugin.handlers] })) };
      }),
  };
}

function userOut(user: UserEntry): MessageInitShape<typeof UserSchema> {
  return {
    name: user.name,
    roles: [...user.roles],
    grants: [...user.grants],
    tokens: user.tokens.length,
    createdAt: new Date(user.createdAt).toISOString(),
  };
}
