/**
 * `ferry.v1.JobService`: the library's job calls for a remote caller. Who the caller is comes from
 * `callerOf` (the daemon's authentication: a token's user and role); this layer decides what that
 * caller may do:
 *
 * - `admin`: everything, on every job, and `Purge`;
 * - `submitter`: launch, and every call on jobs it launched (the handle alone is not enough: a
 *   leaked handle of another user's job answers FERRY_NOT_FOUND, as a wrong cookie does);
 *   `CancelAll` reaches its own jobs only;
 * - `viewer`: list jobs, with error codes but no error text or payload previews; nothing else.
 *
 * `Retry` starts a job again, so it needs what `Launch` of that job would: the handler's rights
 * (restricted handlers need a grant) and the caller's quota.
 *
 * Jobs launched here carry the caller's user as their owner; a caller cannot choose another.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import { parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import { type Handle, isFinished } from "../core/job.js";
import type { JobService } from "../gen/ferry/v1/jobs_pb.js";
import type { Caller } from "./authn.js";
import { checkLaunchRights } from "./launch-rights.js";
import type { OpenWatches } from "./open-watches.js";
import type { LaunchQuotas } from "./quotas.js";
import {
  handleOf,
  type JobDetail,
  jobDetailFor,
  launchOptionsOf,
  listFilterOf,
  listRowOut,
  payloadOf,
  resultOut,
  statusOut,
} from "./rpc-convert.js";
import { answering, denied, toConnectError } from "./rpc-errors.js";

export interface JobServiceOptions {
  /** The authenticated caller of one call; throws FERRY_UNAUTHENTICATED when there is none. */
  readonly callerOf: (context: HandlerContext) => Caller;
  /** Handlers only admins and users granted them may launch (e.g. `sql.exec`). */
  readonly restrictedHandlers?: ReadonlySet<string>;
  /** Per-user launch quotas; none when absent. */
  readonly quotas?: LaunchQuotas;
  /** The longest grace a cancel may ask for, in ms (`limits.cancel_grace_max`; the library caps at 1 h). */
  readonly cancelGraceMaxMs?: number;
  /** `Watch` and `Wait` calls each user may hold open at once; unbounded when absent. */
  readonly openWatches?: OpenWatches;
}

/** A page of `List` holds at most this many rows (100 when the caller asks for none). */
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
const MAX_BATCH = 1000;

export function jobService(ferry: Ferry, options: JobServiceOptions): ServiceImpl<typeof JobService> {
  const restricted = options.restrictedHandlers ?? new Set<string>();
  /** The caller, once it may launch each of `handlers`. */
  const launcher = (context: HandlerContext, handlers: readonly string[]): Caller => {
    const caller = options.callerOf(context);
    checkLaunchRights(caller, handlers, restricted);
    return caller;
  };

  /** A cancel's grace, once within the daemon's cap. */
  const graceOf = (grace: string | undefined): { grace?: string } => {
    if (grace === undefined) return {};
    const cap = options.cancelGraceMaxMs;
    if (cap !== undefined && parseDuration(grace, "grace") > cap) {
      throw invalidArgument(`grace is capped at ${cap / 1000} s on this daemon (limits.cancel_grace_max)`);
    }
    return { grace };
  };

  /** Runs `launch` of `n` jobs within the caller's quotas: a refusal stores nothing. */
  const withinQuota = async <T>(caller: Caller, n: number, launch: () => Promise<T>): Promise<T> => {
    const admission = await options.quotas?.admit(caller.user, n);
    try {
      const launched = await launch();
      admission?.stored();
      return launched;
    } catch (error) {
      admission?.refund();
      throw error;
    }
  };

  /** The handle, once the caller may act on its job: its owner, or an admin. */
  const mine = async (context: HandlerContext, handle: Handle): Promise<Handle> =>
    (await mineWithStatus(context, handle)).handle;

  /** What the caller may see of jobs' errors and payloads (viewers: codes only). */
  const detailFor = (context: HandlerContext): JobDetail => jobDetailFor(options.callerOf(context).role);

  /** `mine`, with the status read to check the owner: `Status` answers it without a second read. */
  const mineWithStatus = async (context: HandlerContext, handle: Handle) => {
    const caller = options.callerOf(context);
    if (caller.role === "viewer") throw denied("act on jobs");
    // A wrong cookie and another user's job answer byte for byte as an unknown id, and after the
    // same work (the owner is checked before the status is read on): a leaked handle proves nothing.
    const status = await ferry.status(handle, caller.role === "admin" ? {} : { owner: caller.user });
    return { handle, status };
  };

  return {
    launch: (request, context) =>
      answering(async () => {
        const caller = launcher(context, [request.handler]);
        const handle = await withinQuota(caller, 1, () =>
          ferry.launch(
            request.handler,
            payloadOf(request.payload),
            launchOptionsOf(request.options, caller.user),
          ),
        );
        return { handle: { id: handle.id, cookie: handle.cookie } };
      }),

    submit: (request, context) =>
      answering(async () => {
        const caller = launcher(context, [request.handler]);
        const { id } = await withinQuota(caller, 1, () =>
          ferry.submit(
            request.handler,
            payloadOf(request.payload),
            launchOptionsOf(request.options, caller.user),
          ),
        );
        return { id };
      }),

    launchMany: (request, context) =>
      answering(async () => {
        const caller = launcher(
          context,
          request.jobs.map((job) => job.handler),
        );
        if (request.jobs.length > MAX_BATCH)
          throw invalidArgument(`at most ${MAX_BATCH} jobs per LaunchMany`);
        const jobs = request.jobs.map((job) => ({
          handler: job.handler,
          payload: payloadOf(job.payload),
          options: launchOptionsOf(job.options, caller.user),
        }));
        const handles = await withinQuota(caller, jobs.length, () => ferry.launchMany(jobs));
        return { handles: handles.map(({ id, cookie }) => ({ id, cookie })) };
      }),

    status: (request, context) =>
      answering(async () =>
        statusOut((await mineWithStatus(context, handleOf(request.handle))).status, detailFor(context)),
      ),

    wait: (request, context) =>
      answering(async () => {
        const handle = await mine(context, handleOf(request.handle));
        const caller = options.callerOf(context);
        // Refused past the user's cap before it subscribes to anything.
        const closeWatch = options.openWatches?.open(caller.user);
        // A revoked token ends the wait too, not only the next call.
        const session = caller.hold();
        try {
          const signal = AbortSignal.any([context.signal, session.signal]);
          const status = await ferry.wait(handle, {
            signal,
            ...(request.timeout === undefined ? {} : { timeout: request.timeout }),
          });
          return statusOut(status, jobDetailFor(caller.role));
        } finally {
          session.release();
          closeWatch?.();
        }
      }),

    result: (request, context) =>
      answering(async () =>
        resultOut(await ferry.result(await mine(context, handleOf(request.handle))), detailFor(context)),
      ),

    outcome: (request, context) =>
      answering(async () => {
        const handle = await mine(context, handleOf(request.handle));
        // The library's outcome, but errors stay errors: a bad handle is FERRY_NOT_FOUND, and a
        // failure inside stays hidden (FERRY_INTERNAL) instead of becoming an answer.
        const detail = detailFor(context);
        for (;;) {
          try {
            return resultOut(await ferry.result(handle), detail);
          } catch (error) {
            if (!(error instanceof FerryError && error.code === ErrorCode.NotFinished)) throw error;
          }
          const status = await ferry.status(handle);
          // Finished between the two reads: its result is there now.
          if (!isFinished(status.state)) return { id: status.id, state: status.state };
        }
      }),

    cancel: (request, context) =>
      answering(async () => {
        const handle = await mine(context, handleOf(request.handle));
        const state = await ferry.cancel(handle, graceOf(request.grace));
        return { state };
      }),

    detach: (request, context) =>
      answering(async () => {
        await ferry.detach(await mine(context, handleOf(request.handle)));
        return {};
      }),

    retry: (request, context) =>
      answering(async () => {
        const { handle, status } = await mineWithStatus(context, handleOf(request.handle));
        // A retry starts the job again: the caller needs the rights and quota a launch of it would.
        const caller = launcher(context, [status.handler]);
        await withinQuota(caller, 1, () => ferry.retry(handle));
        return {};
      }),

    cancelAll: (request, context) =>
      answering(async () => {
        const caller = options.callerOf(context);
        if (caller.role === "viewer") throw denied("cancel jobs");
        if (request.label !== undefined && request.all) throw invalidArgument("give label or all, not both");
        if (request.label === "") throw invalidArgument("label must be a pattern such as nightly-%");
        if (request.label === undefined && !request.all) {
          throw invalidArgument("CancelAll needs label (a pattern such as nightly-%) or all");
        }
        const count = await ferry.cancelAll({
          ...(request.label === undefined ? {} : { label: request.label }),
          // A submitter's sweep never reaches another user's jobs.
          ...(caller.role === "admin" ? {} : { owner: caller.user }),
          ...graceOf(request.grace),
        });
        return { count };
      }),

    purge: (request, context) =>
      answering(async () => {
        if (options.callerOf(context).role !== "admin") throw denied("purge jobs");
        if (request.olderThan === "") throw invalidArgument('older_than is required, e.g. "7d"');
        const { state } = request;
        if (state !== undefined && !isPurgeable(state)) {
          throw invalidArgument("state must be completed, failed or cancelled");
        }
        const count = await ferry.purge({
          olderThan: request.olderThan,
          ...(state === undefined ? {} : { state }),
        });
        return { count };
      }),

    list: (request, context) =>
      answering(async () => {
        const caller = options.callerOf(context);
        const limit = request.limit ?? DEFAULT_PAGE;
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
          throw invalidArgument(`limit must be from 1 to ${MAX_PAGE}`);
        }
        const filter = {
          ...listFilterOf(request),
          // Submitters see their own jobs; viewers and admins every job.
          ...(caller.role === "submitter" ? { owner: caller.user } : {}),
          ...(request.afterId === undefined ? {} : { afterId: request.afterId }),
          previews: caller.role !== "viewer",
          limit: limit + 1,
        };
        const rows = [];
        for await (const row of ferry.list(filter)) rows.push(row);
        const page = rows.slice(0, limit);
        return {
          jobs: page.map((row) => listRowOut(row, jobDetailFor(caller.role))),
          ...(rows.length > limit ? { nextAfterId: page[page.length - 1]!.id } : {}),
        };
      }),

    async *watch(request, context) {
      const handle = await answering(() => mine(context, handleOf(request.handle)));
      const caller = options.callerOf(context);
      // Refused past the user's cap before it subscribes to anything.
      const closeWatch = await answering(async () => options.openWatches?.open(caller.user));
      // A revoked token ends the stream within the access document's refresh time.
      const session = caller.hold();
      try {
        const signal = AbortSignal.any([context.signal, session.signal]);
        for await (const _ of ferry.watch(handle, { signal })) {
          yield statusOut(await ferry.status(handle), jobDetailFor(caller.role));
        }
      } catch (error) {
        throw toConnectError(error);
      } finally {
        session.release();
        closeWatch?.();
      }
    },
  };
}

const PURGEABLE = ["completed", "failed", "cancelled"] as const;
const isPurgeable = (state: string): state is (typeof PURGEABLE)[number] =>
  (PURGEABLE as readonly string[]).includes(state);
