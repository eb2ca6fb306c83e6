/**
 * `ferry.v1.JobService`: the library's job calls for a remote caller. Who the caller is comes from
 * `callerOf` (the daemon's authentication: a token's user and role); this layer decides what that
 * caller may do (`src/daemon/job-access.ts`):
 *
 * - `admin`: everything, on every job, and `Purge`; sees each job's owner;
 * - `submitter`: launch, and every call on jobs it launched (the handle alone is not enough: a
 *   leaked handle of another user's job answers FERRY_NOT_FOUND, as a wrong cookie does);
 *   `CancelAll` and `DetachAll` reach its own jobs only;
 * - `viewer`: list jobs, with error codes but no error text or payload previews; nothing else.
 *
 * `Retry` and `Run` start a job, so they need what `Launch` of that job would: the handler's
 * rights (restricted handlers need a grant) and the caller's quota. The long calls are in
 * `job-waits.ts`.
 *
 * Jobs launched here carry the caller's user as their owner; a caller cannot choose another.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import { isFinished, type JobResult } from "../core/job.js";
import type { JobService } from "../gen/ferry/v1/jobs_pb.js";
import type { Caller } from "./authn.js";
import { type JobServiceOptions, jobAccess } from "./job-access.js";
import { jobWaits } from "./job-waits.js";
import { launchEachCall } from "./launch-each.js";
import type { Admission } from "./quotas.js";
import {
  handleOf,
  jobDetailFor,
  launchOptionsOf,
  listFilterOf,
  listRowOut,
  payloadOf,
  resultOut,
  statusOut,
} from "./rpc-convert.js";
import { answering, denied } from "./rpc-errors.js";

export type { JobServiceOptions } from "./job-access.js";

/** A page of `List` holds at most this many rows (100 when the caller asks for none). */
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
const MAX_BATCH = 1000;

export function jobService(ferry: Ferry, options: JobServiceOptions): ServiceImpl<typeof JobService> {
  const access = jobAccess(ferry, options);
  const { callerOf, launcher, withinQuota, scopeOf, detailFor, graceOf } = access;

  /** A sweep's filter (CancelAll, DetachAll): a label pattern or all, reaching what the caller may. */
  const sweepOf = (caller: Caller, request: { label?: string | undefined; all: boolean }, verb: string) => {
    if (caller.role === "viewer") throw denied(`${verb} jobs`);
    if (request.label !== undefined && request.all) throw invalidArgument("give label or all, not both");
    if (request.label === "") throw invalidArgument("label must be a pattern such as nightly-%");
    if (request.label === undefined && !request.all) {
      throw invalidArgument("give label (a pattern such as nightly-%) or all");
    }
    return {
      ...(request.label === undefined ? {} : { label: request.label }),
      // A submitter's sweep never reaches another user's jobs.
      ...(caller.role === "admin" ? {} : { owner: caller.user }),
    };
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
        return { handle: { id: handle.id, cookie: handle.cookie }, deduplicated: handle.deduplicated };
      }),

    submit: (request, context) =>
      answering(async () => {
        const caller = launcher(context, [request.handler]);
        const { id, deduplicated } = await withinQuota(caller, 1, () =>
          ferry.submit(
            request.handler,
            payloadOf(request.payload),
            launchOptionsOf(request.options, caller.user),
          ),
        );
        return { id, deduplicated };
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

    launchEach: launchEachCall(ferry, access),

    // Each call on a handle is one call of the caller's scope, which reads the job once: that
    // read checks cookie and owner and is the one the call acts on.
    status: (request, context) =>
      answering(async () => {
        const handle = handleOf(request.handle);
        return statusOut(await scopeOf(context).status(handle), detailFor(context));
      }),

    ...jobWaits(ferry, access),

    result: (request, context) =>
      answering(async () => {
        const handle = handleOf(request.handle);
        return resultOut(await scopeOf(context).result(handle), detailFor(context));
      }),

    outcome: (request, context) =>
      answering(async () => {
        const detail = detailFor(context);
        try {
          const handle = handleOf(request.handle);
          const answer = await scopeOf(context).resultOrState(handle);
          // A finished job's result (collected), or an unfinished one's id and state.
          return isFinished(answer.state)
            ? resultOut(answer as JobResult, detail)
            : { id: (answer as { id: string }).id, state: answer.state };
        } catch (error) {
          // Answers as the library's outcome does. A viewer's or an unknown caller's refusal is
          // about the call, not the job: it stays an error, as does anything not Ferry's (hidden).
          if (!(error instanceof FerryError)) throw error;
          const state = OUTCOME_STATES[error.code];
          if (state === undefined) throw error;
          return { state, error: { code: error.code, message: error.message } };
        }
      }),

    cancel: (request, context) =>
      answering(async () => {
        const handle = handleOf(request.handle);
        const jobs = scopeOf(context);
        let grace: { grace?: string };
        try {
          grace = graceOf(request.grace);
        } catch (refusal) {
          // A handle that reaches nothing answers not found before its grace is judged.
          await jobs.status(handle);
          throw refusal;
        }
        return { state: await jobs.cancel(handle, grace) };
      }),

    detach: (request, context) =>
      answering(async () => {
        const handle = handleOf(request.handle);
        await scopeOf(context).detach(handle);
        return {};
      }),

    retry: (request, context) =>
      answering(async () => {
        const handle = handleOf(request.handle);
        const held: { admission?: Admission | undefined } = {};
        try {
          await scopeOf(context).retry(handle, {
            // A retry starts the job again: the caller needs the rights and quota a launch of it
            // would, judged on the job just read, before it is queued again.
            before: async ({ handler }) => {
              held.admission = await access.admit(launcher(context, [handler]), 1);
            },
          });
        } catch (error) {
          held.admission?.refund();
          throw error;
        }
        held.admission?.stored();
        return {};
      }),

    cancelAll: (request, context) =>
      answering(async () => {
        const filter = sweepOf(callerOf(context), request, "cancel");
        return { count: await ferry.cancelAll({ ...filter, ...graceOf(request.grace) }) };
      }),

    detachAll: (request, context) =>
      answering(async () => ({
        count: await ferry.detachAll(sweepOf(callerOf(context), request, "detach")),
      })),

    purge: (request, context) =>
      answering(async () => {
        if (callerOf(context).role !== "admin") throw denied("purge jobs");
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
        const caller = callerOf(context);
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
  };
}

/** The library's outcome states for the errors it answers instead of throwing. */
const OUTCOME_STATES: Partial<Record<string, "not_found" | "unavailable">> = {
  [ErrorCode.NotFound]: "not_found",
  [ErrorCode.StoreUnavailable]: "unavailable",
};

const PURGEABLE = ["completed", "failed", "cancelled"] as const;
const isPurgeable = (state: string): state is (typeof PURGEABLE)[number] =>
  (PURGEABLE as readonly string[]).includes(state);
