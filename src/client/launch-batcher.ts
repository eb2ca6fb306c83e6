/**
 * Concurrent launches on one client, sent together. Every `launch` and `submit` made before the
 * event loop next turns to I/O (the same turn: a producer's loop, a `Promise.all`) leaves as one
 * `LaunchEach` over the client's one connection, which the daemon stores in one transaction; each
 * call still gets its own handle or its own error, in order. A call made alone waits only for
 * that turn (a `setImmediate`), so there is no timer to tune.
 *
 * A batch the daemon refuses whole for its size (its `max_payload_bytes` may be small) or does not
 * know (an older daemon) is sent again one call at a time, so batching never fails a launch that
 * would have succeeded alone.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { LaunchedHandle } from "../core/job.js";
import type { Connection } from "./connection.js";
import { ferryErrorOf, toFerryError } from "./errors.js";
import { launchMessage, type PreparedLaunch } from "./to-proto.js";

/** The daemon takes at most this many jobs per LaunchEach. */
const MAX_JOBS = 1000;
/**
 * A batch's payloads stay under this many bytes (as JSON), a quarter of the daemon's default
 * request limit; a launch larger than `ALONE_BYTES` goes by itself, as a plain Launch.
 */
const MAX_BATCH_BYTES = 256 * 1024;
const ALONE_BYTES = 64 * 1024;

interface Pending {
  readonly job: PreparedLaunch;
  readonly submit: boolean;
  readonly resolve: (handle: LaunchedHandle) => void;
  readonly reject: (error: FerryError) => void;
}

export class LaunchBatcher {
  readonly #connection: Connection;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  /** False once the daemon answered that it has no LaunchEach. */
  #daemonBatches = true;

  constructor(connection: Connection) {
    this.#connection = connection;
  }

  /** Sends `job` with the calls made in the same turn; answers its handle (no cookie for a submit). */
  add(job: PreparedLaunch, submit: boolean): Promise<LaunchedHandle> {
    if (job.bytes > ALONE_BYTES || !this.#daemonBatches) return this.#alone(job, submit);
    return new Promise((resolve, reject) => {
      if (this.#pendingBytes + job.bytes > MAX_BATCH_BYTES || this.#pending.length >= MAX_JOBS) this.#flush();
      this.#pending.push({ job, submit, resolve, reject });
      this.#pendingBytes += job.bytes;
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const [only] = batch as [Pending];
      this.#alone(only.job, only.submit).then(only.resolve, only.reject);
      return;
    }
    void this.#send(batch);
  }

  async #send(batch: readonly Pending[]): Promise<void> {
    let results: Awaited<ReturnType<Connection["jobs"]["launchEach"]>>["results"];
    try {
      ({ results } = await this.#connection.jobs.launchEach({
        jobs: batch.map(({ job, submit }) => ({ job: launchMessage(job), submit })),
      }));
      if (results.length !== batch.length) throw new Error("the daemon answered a different number of jobs");
    } catch (error) {
      if (!sendAloneAfter(error)) {
        const failure = toFerryError(error);
        for (const call of batch) call.reject(failure);
        return;
      }
      if (ConnectError.from(error).code === Code.Unimplemented) this.#daemonBatches = false;
      for (const call of batch) this.#alone(call.job, call.submit).then(call.resolve, call.reject);
      return;
    }
    for (const [index, call] of batch.entries()) {
      const { result } = results[index]!;
      if (result.case === "launched") {
        const { handle, deduplicated } = result.value;
        call.resolve({ id: handle?.id ?? "", cookie: handle?.cookie ?? "", deduplicated });
      } else {
        const { code, message } = result.value ?? { code: "", message: "" };
        call.reject(ferryErrorOf(code, message));
      }
    }
  }

  async #alone(job: PreparedLaunch, submit: boolean): Promise<LaunchedHandle> {
    try {
      if (submit) {
        const { id, deduplicated } = await this.#connection.jobs.submit(launchMessage(job));
        return { id, cookie: "", deduplicated };
      }
      const { handle, deduplicated } = await this.#connection.jobs.launch(launchMessage(job));
      return { id: handle?.id ?? "", cookie: handle?.cookie ?? "", deduplicated };
    } catch (error) {
      throw toFerryError(error);
    }
  }
}

/** A whole batch refused for what it is, not for what its jobs are: each goes again alone. */
function sendAloneAfter(error: unknown): boolean {
  if (error instanceof FerryError) return false;
  const rpc = ConnectError.from(error);
  if (rpc.code === Code.Unimplemented) return true;
  const ferry = toFerryError(error);
  return ferry.code === ErrorCode.PayloadTooLarge;
}
