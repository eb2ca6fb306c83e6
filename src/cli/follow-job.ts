/**
 * Waiting on a job from the command line (`ferry wait`, `ferry run`): the client's `wait` in
 * slices of at most 50 s until the job is finished or the caller's timeout passes (so no proxy or
 * idle-socket timeout cuts a long wait), and, on a terminal only, a one-line progress indicator
 * on stderr fed by the client's `watch`. In a pipe nothing but the answer is written.
 */
import type { WatchEvent } from "../api/ferry.js";
import type { FerryClient } from "../client/ferry-client.js";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { Handle, JobStatus } from "../core/job.js";
import { percent } from "./output.js";

const SLICE_MS = 50_000;
const REDRAW_MS = 1_000;

/** The job's status once finished; FERRY_TIMEOUT once `timeoutMs` has passed. */
export async function followJob(
  client: FerryClient,
  handle: Handle,
  timeoutMs: number | undefined,
): Promise<JobStatus> {
  const progress = process.stderr.isTTY ? showProgress(client, handle) : undefined;
  try {
    return await waitInSlices(client, handle, timeoutMs);
  } finally {
    progress?.stop();
  }
}

async function waitInSlices(
  client: FerryClient,
  handle: Handle,
  timeoutMs: number | undefined,
): Promise<JobStatus> {
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  for (;;) {
    // At least 1 ms: the client answers a wait of 0 with FERRY_TIMEOUT before asking the daemon.
    const slice = Math.min(SLICE_MS, Math.max(1, deadline - Date.now()));
    try {
      return await client.wait(handle, { timeout: slice });
    } catch (error) {
      if (!isTimeout(error) || Date.now() >= deadline) throw error;
    }
  }
}

export const isTimeout = (error: unknown): boolean =>
  error instanceof FerryError && error.code === ErrorCode.Timeout;

/** What the progress line shows: the watch's latest event, and the attempts the job has. */
export interface ProgressView extends WatchEvent {
  readonly maxAttempts?: number | undefined;
}

/** `running  42%  attempt 1/3  12s`: what a person watching a terminal wants to know. */
export function progressLine(view: ProgressView | undefined, elapsedMs: number): string {
  const parts = view === undefined ? ["waiting"] : [view.state];
  if (view !== undefined && view.progress !== null) parts.push(percent(view.progress));
  if (view !== undefined && view.attempts > 0)
    parts.push(`attempt ${view.attempts}${view.maxAttempts === undefined ? "" : `/${view.maxAttempts}`}`);
  parts.push(`${Math.floor(elapsedMs / 1000)}s`);
  return parts.join("  ");
}

/** Redraws one stderr line at each change the watch reports, and each second for the clock. */
function showProgress(client: FerryClient, handle: Handle): { stop(): void } {
  const started = Date.now();
  const stream = new AbortController();
  let latest: ProgressView | undefined;
  let maxAttempts: number | undefined;
  const draw = () => process.stderr.write(`\r\x1b[K${progressLine(latest, Date.now() - started)}`);
  draw();
  const clock = setInterval(draw, REDRAW_MS);
  void (async () => {
    // A watch event has no attempt limit: the status has it, and it stays the job's.
    const status = await client.status(handle);
    maxAttempts = status.maxAttempts;
    latest = status;
    draw();
    for await (const event of client.watch(handle, { signal: stream.signal })) {
      latest = { ...event, maxAttempts };
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
