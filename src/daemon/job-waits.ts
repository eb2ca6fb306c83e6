/**
 * The long calls of `ferry.v1.JobService`: `Wait`, `WaitAny`, `Drain`, `Run` and `Watch`. Each
 * holds one of the caller's open-watch slots while it waits (`limits.max_watches_per_user`,
 * refused before it subscribes to anything) and ends when the caller goes away or its token is
 * revoked.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import { runWaitMs } from "../api/run-wait.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import type { Handle } from "../core/job.js";
import type { JobService, Handle as PbHandle } from "../gen/ferry/v1/jobs_pb.js";
import type { JobAccess, LongCall } from "./job-access.js";
import { handleOf, jobDetailFor, launchOptionsOf, payloadOf, resultOut, statusOut } from "./rpc-convert.js";
import { answering, toConnectError } from "./rpc-errors.js";

/** `WaitAny` and `Drain` take at most this many handles. */
const MAX_HANDLES = 1000;

type WaitCalls = Pick<ServiceImpl<typeof JobService>, "wait" | "waitAny" | "drain" | "run" | "watch">;

export function jobWaits(ferry: Ferry, access: JobAccess): WaitCalls {
  /** Runs `wait` holding one of the caller's long-call slots. */
  const longCall = async <T>(context: HandlerContext, wait: (call: LongCall) => Promise<T>): Promise<T> => {
    const call = access.openLongCall(context);
    try {
      return await wait(call);
    } finally {
      call.end();
    }
  };

  /**
   * Runs `wait` (a library wait on the caller's jobs) holding one of the caller's long-call slots,
   * taken once its handles are found: one read per handle answers both "may this caller act on
   * it" and "is it finished yet".
   */
  const heldOnceFound = async <T>(
    context: HandlerContext,
    wait: (admit: () => AbortSignal) => Promise<T>,
  ): Promise<T> => {
    const call = access.longCallOnceFound(context);
    try {
      return await wait(call.admit);
    } finally {
      call.end();
    }
  };

  /** The handles of `WaitAny` and `Drain`, once there are not too many. */
  const handlesOf = (handles: readonly PbHandle[]): Handle[] => {
    if (handles.length > MAX_HANDLES) throw invalidArgument(`at most ${MAX_HANDLES} handles per call`);
    return handles.map(handleOf);
  };

  const timeoutOf = (timeout: string | undefined) => (timeout === undefined ? {} : { timeout });

  return {
    wait: (request, context) =>
      answering(async () => {
        const handle = handleOf(request.handle);
        const jobs = access.scopeOf(context);
        const status = await heldOnceFound(context, (admit) =>
          jobs.wait(handle, { admit, ...timeoutOf(request.timeout) }),
        );
        return statusOut(status, access.detailFor(context));
      }),

    waitAny: (request, context) =>
      answering(async () => {
        const handles = handlesOf(request.handles);
        if (handles.length === 0) throw invalidArgument("WaitAny needs at least one handle");
        const jobs = access.scopeOf(context);
        const first = await heldOnceFound(context, (admit) =>
          jobs.waitAny(handles, { admit, ...timeoutOf(request.timeout) }),
        );
        return {
          index: first.index,
          handle: { id: first.handle.id, cookie: first.handle.cookie },
          status: statusOut(first.status, access.detailFor(context)),
        };
      }),

    drain: (request, context) =>
      answering(async () => {
        const handles = handlesOf(request.handles);
        if (handles.length === 0) return { statuses: [] };
        const jobs = access.scopeOf(context);
        const statuses = await heldOnceFound(context, (admit) =>
          jobs.drain(handles, { admit, ...timeoutOf(request.timeout) }),
        );
        const detail = access.detailFor(context);
        return { statuses: statuses.map((status) => statusOut(status, detail)) };
      }),

    run: (request, context) =>
      answering(async () => {
        const caller = access.launcher(context, [request.handler]);
        const payload = payloadOf(request.payload);
        const options = launchOptionsOf(request.options, caller.user);
        const waitMs = runWaitMs(request.wait, options.timeout);
        // The slot is taken before the launch: a refused Run stores nothing.
        return longCall(context, async ({ signal }) => {
          const handle = await access.withinQuota(caller, 1, () =>
            ferry.launch(request.handler, payload, options),
          );
          try {
            await ferry.wait(handle, { signal, ...(waitMs === undefined ? {} : { timeout: waitMs }) });
          } catch (error) {
            if (error instanceof FerryError && error.code === ErrorCode.Timeout) {
              await ferry.cancel(handle, { grace: 0 }).catch(() => undefined);
            } else if (signal.aborted) {
              // Nobody else holds this job's handle: its result could never be collected.
              await ferry.detach(handle).catch(() => undefined);
            }
            throw error;
          }
          const result = await ferry.result(handle);
          if (result.error?.code === ErrorCode.Timeout) {
            throw new FerryError(ErrorCode.Timeout, result.error.message);
          }
          return resultOut(result, jobDetailFor(caller.role));
        });
      }),

    async *watch(request, context) {
      const call = access.longCallOnceFound(context);
      try {
        const handle = handleOf(request.handle);
        const jobs = access.scopeOf(context);
        // Each change arrives as the job's status, read once: the one sent.
        for await (const status of jobs.follow(handle, { admit: call.admit })) {
          yield statusOut(status, jobDetailFor(call.caller()!.role));
        }
      } catch (error) {
        throw toConnectError(error);
      } finally {
        call.end();
      }
    },
  };
}
