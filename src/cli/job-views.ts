/**
 * A job's status and result as the CLI prints them, and the SPEC's exit code 1 for a job that
 * ended failed or cancelled: its error goes to stderr, whatever went to stdout.
 */
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type ErrorInfo,
  type JobResult,
  JobResultSchema,
  type JobStatus,
  JobStatusSchema,
} from "../gen/ferry/v1/jobs_pb.js";
import { messageJson, percent, printFields, printJson } from "./output.js";
import { EXIT } from "./remote.js";

/** `ferry status` and `ferry wait`: every field, or the status as JSON. */
export function printStatus(status: JobStatus, json: boolean): void {
  if (json) {
    printJson(messageJson(JobStatusSchema, status));
    return;
  }
  const cancelling = status.cancelRequested && !isEnded(status.state) ? " (cancel requested)" : "";
  printFields([
    ["id", status.id],
    ["handler", status.handler],
    ["queue", status.queue],
    ["state", status.state + cancelling],
    ["attempts", `${status.attempts}/${status.maxAttempts}`],
    ["progress", status.progress === undefined ? undefined : percent(status.progress)],
    ["priority", String(status.priority)],
    ["label", status.label],
    ["launched", status.launchedAt],
    ["runs at", status.state === "scheduled" ? status.runAt : undefined],
    ["started", status.startedAt],
    ["finished", status.finishedAt],
    ["consumed", isEnded(status.state) ? (status.consumed ? "yes" : "no") : undefined],
    ["error", status.errorInfo === undefined ? undefined : errorText(status.errorInfo)],
  ]);
}

/**
 * `ferry result`, `outcome` and `run`: a completed job's value as JSON on stdout (so
 * `ferry result H | jq` works), an unfinished one's state (outcome), or the result as JSON.
 */
export function printResult(result: JobResult, json: boolean): void {
  if (json) {
    // An unfinished job's outcome is its id and state alone, as the library's outcome answers.
    printJson(
      isEnded(result.state) ? messageJson(JobResultSchema, result) : { id: result.id, state: result.state },
    );
  } else if (result.state === "completed") {
    const value = result.value === undefined ? null : toJson(ValueSchema, result.value);
    process.stdout.write(`${JSON.stringify(value)}\n`);
  } else if (!isEnded(result.state)) {
    process.stdout.write(`${result.state}\n`);
  }
}

/** A job that ended failed or cancelled: its error on stderr, and exit code 1 once the command ends. */
export function reportFailure(job: { id: string; state: string; error?: ErrorInfo | undefined }): void {
  if (job.state !== "failed" && job.state !== "cancelled") return;
  const how = job.state === "failed" ? "failed" : "was cancelled";
  const why = job.error === undefined ? "" : `: ${errorText(job.error)}`;
  process.stderr.write(`ferry: job ${job.id} ${how}${why}\n`);
  process.exitCode = EXIT.jobFailed;
}

const errorText = (error: ErrorInfo): string => `${error.code}: ${error.message}`;

const isEnded = (state: string): boolean =>
  state === "completed" || state === "failed" || state === "cancelled";
