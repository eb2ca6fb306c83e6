/**
 * Concurrent launches on one client, sent together. Every `launch` and `submit` made before the
 * event loop next turns to I/O (the same turn: a producer's loop, a `Promise.all`) leaves as one
 * `LaunchEach` over the client's one connection, which the daemon stores in one transaction; each
 * call still gets its own handle or its own error, in order. A call made alone waits only for
 * that turn (a `setImmediate`), so there is no timer to tune.
 *
 * A batch the daemon refuses whole for its size (its `max_payload_bytes` may be small), for its
 * body (over Connect JSON one payload with a `constructor` key fails the whole request), or does
 * not know (an older daemon) is sent again one call at a time, so batching never fails a launch
 * that would have succeeded alone, nor lets one caller's launch fail another's.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { LaunchedHandle } from "../core/job.js";
import type { Connection } from "./connection.js";
import { ferryErrorOf, toFerryError } from "./errors.js";
import { launchMessage, type PreparedLaunch } from "./to-proto.js";

/** The daemon takes at most this many jobs per LaunchEach. */
const MAX_JOBS = 1000;
/** ... and at most this many `dependsOn` handles in all (MAX_EACH_PARENTS, launch-each.ts). */
const MAX_PARENTS = 1000;
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
  #pendingParents = 0;
  #scheduled = false;
  /** False once the daemon answered that it has no LaunchEach. */
  #daemonBatches = true;

  constructor(connection: Connection) {
    this.#connection = connection;
  }

  /** Sends `job` with the calls made in the same turn; answers its handle (no cookie for a submit). */
  add(job: PreparedLaunch, submit: boolean): Promise<LaunchedHandle> {
    if (job.bytes > ALONE_BYTES || !this.#daemonBatches) return this.#alone(job, submit);
    // A job naming more than 100 parents is refused alone by the daemon, wherever it goes.
    const parents = Math.min(job.options.dependsOn?.length ?? 0, 100);
    return new Promise((resolve, reject) => {
      if (
        this.#pendingBytes + job.bytes > MAX_BATCH_BYTES ||
        this.#pending.length >= MAX_JOBS ||
        this.#pendingParents + parents > MAX_PARENTS
      )
        this.#flush();
      this.#pending.push({ job, submit, resolve, reject });
      this.#pendingBytes += job.bytes;
      this.#pendingParents += parents;
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
    this.#pendingParents = 0;
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
      // Answers are matched to calls by position: any other count would hand them to the wrong callers.
      if (results.length !== batch.length) {
        throw badAnswer(`the daemon answered ${results.length} results for ${batch.length} launches`);
      }
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
        settle(call, () => handleOf(handle, deduplicated));
      } else if (result.case === "refused") {
        call.reject(ferryErrorOf(result.value.code, result.value.message));
      } else {
        call.reject(badAnswer("the daemon answered neither a handle nor a refusal"));
      }
    }
  }

  async #alone(job: PreparedLaunch, submit: boolean): Promise<LaunchedHandle> {
    try {
      if (submit) {
        const { id, deduplicated } = await this.#connection.jobs.submit(launchMessage(job));
        return handleOf({ id, cookie: "" }, deduplicated);
      }
      const { handle, deduplicated } = await this.#connection.jobs.launch(launchMessage(job));
      return handleOf(handle, deduplicated);
    } catch (error) {
      throw toFerryError(error);
    }
  }
}

/**
 * A whole batch refused for what it is, not for what its jobs are: each goes again alone. A
 * whole-call FERRY_INVALID_ARGUMENT is about the request (its body's JSON rules, its job or parent
 * count), never one job's: the daemon answers those per job.
 */
function sendAloneAfter(error: unknown): boolean {
  if (error instanceof FerryError) return false;
  const rpc = ConnectError.from(error);
  if (rpc.code === Code.Unimplemented) return true;
  const ferry = toFerryError(error);
  return ferry.code === ErrorCode.PayloadTooLarge || ferry.code === ErrorCode.InvalidArgument;
}

/**
 * An answer the daemon should never give. Not `unreachable`: the daemon got the call and may have
 * stored its jobs, so trying again could launch them twice.
 */
const badAnswer = (message: string): FerryError =>
  new FerryError(ErrorCode.StoreUnavailable, message, { details: { badAnswer: true } });

/** A launched job's handle, once it names a job (a submit's has no cookie, nor has a deduplicated one). */
function handleOf(handle: { id: string; cookie: string } | undefined, deduplicated: boolean): LaunchedHandle {
  if (handle === undefined || handle.id === "")
    throw badAnswer("the daemon answered a handle with no job id");
  return { id: handle.id, cookie: handle.cookie, deduplicated };
}

/** Resolves `call` with what `answer` gives, or rejects it with what it throws. */
function settle(call: Pending, answer: () => LaunchedHandle): void {
  try {
    call.resolve(answer());
  } catch (error) {
    call.reject(toFerryError(error));
  }
}
