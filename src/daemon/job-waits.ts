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

  /** The handles, once the caller may act on each one's job (the first that is not answers not found). */
  const allMine = async (context: HandlerContext, handles: readonly PbHandle[]): Promise<Handle[]> => {
    if (handles.length > MAX_HANDLES) throw invalidArgument(`at most ${MAX_HANDLES} handles per call`);
    const checked: Handle[] = [];
    for (const handle of handles) checked.push(await access.mine(context, handleOf(handle)));
    return checked;
  };

  const timeoutOf = (timeout: string | undefined) => (timeout === undefined ? {} : { timeout });

  return {
    wait: (request, context) =>
      answering(async () => {
        const handle = await access.mine(context, handleOf(request.handle));
        return longCall(context, async ({ caller, signal }) =>
          statusOut(
            await ferry.wait(handle, { signal, ...timeoutOf(request.timeout) }),
            jobDetailFor(caller.role),
          ),
        );
      }),

    waitAny: (request, context) =>
      answering(async () => {
        const handles = await allMine(context, request.handles);
        if (handles.length === 0) throw invalidArgument("WaitAny needs at least one handle");
        return longCall(context, async ({ caller, signal }) => {
          const first = await ferry.waitAny(handles, { signal, ...timeoutOf(request.timeout) });
          return {
            index: first.index,
            handle: { id: first.handle.id, cookie: first.handle.cookie },
            status: statusOut(first.status, jobDetailFor(caller.role)),
          };
        });
      }),

    drain: (request, context) =>
      answering(async () => {
        const handles = await allMine(context, request.handles);
        if (handles.length === 0) return { statuses: [] };
        return longCall(context, async ({ caller, signal }) => {
          const statuses = await ferry.drain(handles, { signal, ...timeoutOf(request.timeout) });
          return { statuses: statuses.map((status) => statusOut(status, jobDetailFor(caller.role))) };
        });
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
      const handle = await answering(() => access.mine(context, handleOf(request.handle)));
      const call = await answering(async () => access.openLongCall(context));
      try {
        for await (const _ of ferry.watch(handle, { signal: call.signal })) {
          yield statusOut(await ferry.status(handle), jobDetailFor(call.caller.role));
        }
      } catch (error) {
        throw toConnectError(error);
      } finally {
        call.end();
      }
    },
  };
}
