/** Collecting a finished job's result: `result`, `resultOrState` and `outcome` share it. */
import { ErrorCode, FerryError, notFound } from "../core/errors.js";
import type { JobResult } from "../core/job.js";
import type { JobRecord, Store } from "../store/store.js";
import { toResult } from "./views.js";

/** The job's result, consumed in the store; `record` is the job as just read (and owned). */
export async function collect<T>(store: Store, record: JobRecord): Promise<JobResult<T>> {
  // Decode before consuming: a result this process can't read (no decoder registered here)
  // must stay collectable by one that can.
  const decoded = record.result !== null && !record.consumed ? toResult(record) : undefined;
  const answer = await store.consumeResult(record.id);
  switch (answer.status) {
    case "ok": {
      // The same stored bytes as read above (the usual case): don't decode them twice.
      const same = decoded !== undefined && sameBytes(answer.record.result, record.result);
      return (same ? decoded : toResult(answer.record)) as JobResult<T>;
    }
    case "not_finished":
      throw new FerryError(ErrorCode.NotFinished, "the job has not finished");
    case "consumed":
      throw new FerryError(ErrorCode.NotFound, "the result was already collected");
    case "missing":
      throw notFound();
  }
}

const sameBytes = (a: Uint8Array | null, b: Uint8Array | null): boolean =>
  a !== null &&
  b !== null &&
  a.byteLength === b.byteLength &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
