/**
 * Waiting on a job from the command line (`ferry wait`, `ferry run`): `Wait` calls of at most
 * 50 s each until the job is finished or the caller's timeout passes (so no proxy or idle-socket
 * timeout cuts a long wait), and, on a terminal only, a one-line progress indicator on stderr fed
 * by the job's `Watch` stream. In a pipe nothing but the answer is written.
 */
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { Handle } from "../core/job.js";
import { ERROR_CODE_HEADER } from "../daemon/rpc-errors.js";
import type { JobService, JobStatus } from "../gen/ferry/v1/jobs_pb.js";
import { percent } from "./output.js";

const SLICE_MS = 50_000;
const REDRAW_MS = 1_000;

/** The job's status once finished; FERRY_TIMEOUT (an RPC error) once `timeoutMs` has passed. */
export async function followJob(
  jobs: Client<typeof JobService>,
  handle: Handle,
  timeoutMs: number | undefined,
): Promise<JobStatus> {
  const progress = process.stderr.isTTY ? showProgress(jobs, handle) : undefined;
  try {
    return await waitInSlices(jobs, handle, timeoutMs);
  } finally {
    progress?.stop();
  }
}

async function waitInSlices(
  jobs: Client<typeof JobService>,
  handle: Handle,
  timeoutMs: number | undefined,
): Promise<JobStatus> {
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  for (;;) {
    const slice = Math.min(SLICE_MS, Math.max(0, deadline - Date.now()));
    try {
      return await jobs.wait({ handle, timeout: `${slice}ms` });
    } catch (error) {
      if (!isTimeout(error) || Date.now() >= deadline) throw error;
    }
  }
}

export const isTimeout = (error: unknown): boolean =>
  error instanceof ConnectError &&
  error.code === Code.DeadlineExceeded &&
  error.metadata.get(ERROR_CODE_HEADER) === "FERRY_TIMEOUT";

/** `running  42%  attempt 1/3  12s`: what a person watching a terminal wants to know. */
export function progressLine(status: JobStatus | undefined, elapsedMs: number): string {
  const parts = status === undefined ? ["waiting"] : [status.state];
  if (status?.progress !== undefined) parts.push(percent(status.progress));
  if (status !== undefined && status.attempts > 0)
    parts.push(`attempt ${status.attempts}/${status.maxAttempts}`);
  parts.push(`${Math.floor(elapsedMs / 1000)}s`);
  return parts.join("  ");
}

/** Redraws one stderr line at each change the stream reports, and each second for the clock. */
function showProgress(jobs: Client<typeof JobService>, handle: Handle): { stop(): void } {
  const started = Date.now();
  const stream = new AbortController();
  let latest: JobStatus | undefined;
  const draw = () => process.stderr.write(`\r\x1b[K${progressLine(latest, Date.now() - started)}`);
  draw();
  const clock = setInterval(draw, REDRAW_MS);
  void (async () => {
    for await (const status of jobs.watch({ handle }, { signal: stream.signal })) {
      latest = status;
      draw();
    }
  })().catch(() => {
    // The indicator is a courtesy: a broken stream leaves the wait itself to answer.
  });
  return {
    stop: () => {
      stream.abort();
      clearInterval(clock);
      process.stderr.write("\r\x1b[K");
    },
  };
}
