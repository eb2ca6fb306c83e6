/**
 * A job's status and result as the CLI prints them, and the SPEC's exit code 1 for a job that
 * ended failed or cancelled: its error goes to stderr, whatever went to stdout. `--json` prints
 * the library's answer itself (dates as ISO strings, absent fields as null).
 */
import type { Outcome } from "../api/ferry.js";
import type { ErrorInfo, JobStatus } from "../core/job.js";
import { percent, printFields, printJson, time } from "./output.js";
import { EXIT } from "./remote.js";

/** `ferry status` and `ferry wait`: every field, or the status as JSON. */
export function printStatus(status: JobStatus, json: boolean): void {
  if (json) {
    printJson(status);
    return;
  }
  const cancelling = status.cancelRequested && !isEnded(status.state) ? " (cancel requested)" : "";
  printFields([
    ["id", status.id],
    ["handler", status.handler],
    ["queue", status.queue],
    ["state", status.state + cancelling],
    ["attempts", `${status.attempts}/${status.maxAttempts}`],
    ["progress", status.progress === null ? undefined : percent(status.progress)],
    ["priority", String(status.priority)],
    ["label", status.label ?? undefined],
    ["launched", time(status.launchedAt)],
    ["runs at", status.state === "scheduled" ? time(status.runAt) : undefined],
    ["started", time(status.startedAt)],
    ["finished", time(status.finishedAt)],
    ["consumed", isEnded(status.state) ? (status.consumed ? "yes" : "no") : undefined],
    ["error", status.errorInfo === null ? undefined : errorText(status.errorInfo)],
  ]);
}

/** A result or an outcome with a job behind it (outcome's not_found ends the command earlier). */
export type ShownResult = Exclude<Outcome, { state: "not_found" | "unavailable" }>;

/**
 * `ferry result`, `outcome` and `run`: a completed job's value as JSON on stdout (so
 * `ferry result H | jq` works), an unfinished one's state (outcome), or the answer as JSON.
 */
export function printResult(result: ShownResult, json: boolean): void {
  if (json) printJson(result);
  else if (result.state === "completed") process.stdout.write(`${JSON.stringify(result.value ?? null)}\n`);
  else if (!isEnded(result.state)) process.stdout.write(`${result.state}\n`);
}

/** A job that ended failed or cancelled: its error on stderr, and exit code 1 once the command ends. */
export function reportFailure(job: { id: string; state: string; error?: ErrorInfo | null }): void {
  if (job.state !== "failed" && job.state !== "cancelled") return;
  const how = job.state === "failed" ? "failed" : "was cancelled";
  const why = job.error === undefined || job.error === null ? "" : `: ${errorText(job.error)}`;
  process.stderr.write(`ferry: job ${job.id} ${how}${why}\n`);
  process.exitCode = EXIT.jobFailed;
}

const errorText = (error: ErrorInfo): string => `${error.code}: ${error.message}`;

const isEnded = (state: string): boolean =>
  state === "completed" || state === "failed" || state === "cancelled";
