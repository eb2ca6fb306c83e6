/**
 * The loops behind `wait`, `waitAny`, `drain` and `follow` (and so `watch`), once the handles are
 * read and owned: each starts from the records that check read, so a job already finished costs
 * no second read, then reads again at each change the store announces.
 */
import { parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, notFound } from "../core/errors.js";
import { isFinished, type JobStatus } from "../core/job.js";
import type { WaitOptions } from "../core/options.js";
import type { JobRecord, Store } from "../store/store.js";
import type { AdmitWait } from "./api-types.js";
import type { ChangeWaiter } from "./change-waiter.js";
import { toStatus } from "./views.js";

export interface WaitLoopContext {
  readonly store: Store;
  readonly waiter: ChangeWaiter;
  /** Throws once the Ferry is closed. */
  readonly ensureOpen: () => void;
  readonly closed: () => boolean;
}

/** The statuses of `records`' jobs once any (or all) of them finished. */
export async function waitUntil(
  context: WaitLoopContext,
  records: readonly JobRecord[],
  until: "any" | "all",
  { timeout, signal }: WaitOptions,
): Promise<JobStatus[]> {
  const { store, waiter } = context;
  const ids = records.map((r) => r.id);
  const deadline =
    timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + parseDuration(timeout, "timeout");
  let read: Map<string, JobRecord> | undefined = new Map(records.map((r) => [r.id, r]));
  for (;;) {
    const now = await store.now();
    const current = read ?? new Map((await store.getJobs(ids)).map((r) => [r.id, r]));
    read = undefined;
    if (ids.some((id) => !current.has(id))) throw notFound();
    const statuses = ids.map((id) => toStatus(current.get(id)!, now));
    const finished = statuses.filter((s) => isFinished(s.state)).length;
    if (until === "any" ? finished > 0 : finished === statuses.length) return statuses;
    const left = deadline - Date.now();
    if (left <= 0) throw new FerryError(ErrorCode.Timeout, "the job did not finish in time");
    context.ensureOpen();
    await waiter.next(ids, left, signal);
    throwIfAborted(signal);
  }
}

/** The job's status at each change of state, progress or attempts, until it finishes. */
export async function* followRecord(
  context: WaitLoopContext,
  first: JobRecord,
  signal: AbortSignal | undefined,
): AsyncGenerator<JobStatus> {
  const { store, waiter } = context;
  const { id } = first;
  let read: JobRecord | undefined = first;
  let last = "";
  for (;;) {
    const record = read ?? (await store.getJob(id));
    read = undefined;
    if (record === undefined) return;
    const status = toStatus(record, await store.now());
    const key = `${status.state}|${status.progress}|${status.attempts}`;
    if (key !== last) {
      last = key;
      yield status;
    }
    if (isFinished(status.state) || context.closed()) return;
    await waiter.next([id], Number.POSITIVE_INFINITY, signal);
    throwIfAborted(signal);
  }
}

/** The caller's signal, joined by the one an admission answers (see `AdmitWait`). */
export function withAdmission(
  signal: AbortSignal | undefined,
  admit: AdmitWait | undefined,
): AbortSignal | undefined {
  const admitted = admit?.();
  if (admitted === undefined) return signal;
  return signal === undefined ? admitted : AbortSignal.any([signal, admitted]);
}

/** An aborted wait ends with the signal's reason (a FerryError when the caller gave one). */
function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted !== true) return;
  throw signal.reason instanceof Error
    ? signal.reason
    : new FerryError(ErrorCode.Cancelled, "the wait was aborted");
}
