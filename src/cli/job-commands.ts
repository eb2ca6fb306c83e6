/**
 * The commands on one job, by its handle (`ID.COOKIE`): `status`, `wait`, `result`, `outcome`,
 * `cancel` (or many jobs at once with `--label` / `--all`), `detach` and `retry`. `wait`,
 * `result` and `outcome` exit 1 when the job ended failed or cancelled, and `wait` when its
 * timeout passes first.
 */
import { Command } from "commander";
import type { FerryClient } from "../client/ferry-client.js";
import { parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument, isErrorCode } from "../core/errors.js";
import type { Handle } from "../core/job.js";
import { parseHandle } from "./args.js";
import { followJob } from "./follow-job.js";
import { printResult, printStatus, reportFailure, type ShownResult } from "./job-views.js";
import { printJson } from "./output.js";
import { remoteFromEnv } from "./remote.js";

interface JsonFlag {
  json?: boolean;
}

export function jobCommands(): Command[] {
  const status = onJob(
    "status",
    "state, attempts, progress, times and error; does not consume the result",
  ).action(async (text: string, flags: JsonFlag) => {
    printStatus(await client().status(parseHandle(text)), flags.json === true);
  });

  const wait = onJob("wait", "wait until the job is finished, with progress on a terminal; prints its status")
    .option("--timeout <duration>", "give up after this long (exit 1), e.g. 30s; default: wait on")
    .action(async (text: string, flags: JsonFlag & { timeout?: string }) => {
      const handle = parseHandle(text);
      const timeoutMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout, "--timeout");
      const status = await followJob(client(), handle, timeoutMs);
      printStatus(status, flags.json === true);
      reportFailure({ id: status.id, state: status.state, error: status.errorInfo });
    });

  const result = onJob("result", "a finished job's value (once: this consumes it)").action(
    async (text: string, flags: JsonFlag) => {
      const answer = await client().result(parseHandle(text));
      printResult(answer, flags.json === true);
      reportFailure(answer);
    },
  );

  const outcome = onJob("outcome", "like result, but an unfinished job prints its state (exit 0)").action(
    async (text: string, flags: JsonFlag) => {
      const answer = await outcomeOrThrow(client(), parseHandle(text));
      printResult(answer, flags.json === true);
      if (answer.state !== "scheduled" && answer.state !== "queued" && answer.state !== "running")
        reportFailure(answer);
    },
  );

  const detach = onJob(
    "detach",
    "the job runs on, but its result is dropped and the handle reaches nothing",
  ).action(async (text: string, flags: JsonFlag) => {
    const handle = parseHandle(text);
    await client().detach(handle);
    if (flags.json) printJson({ id: handle.id, detached: true });
    else process.stdout.write(`detached ${handle.id}\n`);
  });

  const retry = onJob("retry", "run a failed or cancelled job again, with fresh attempts").action(
    async (text: string, flags: JsonFlag) => {
      const handle = parseHandle(text);
      await client().retry(handle);
      if (flags.json) printJson({ id: handle.id, retried: true });
      else process.stdout.write(`retrying ${handle.id}\n`);
    },
  );

  return [status, wait, result, outcome, cancelCommand(), detach, retry];
}

interface CancelFlags extends JsonFlag {
  label?: string;
  all?: boolean;
  grace?: string;
}

/** `ferry cancel HANDLE`, or every unfinished job with `--label PATTERN` or `--all`. */
function cancelCommand(): Command {
  return new Command("cancel")
    .description("cancel one job, or many: --label PATTERN (SQL LIKE, e.g. nightly-%) or --all")
    .argument("[handle]", "ID.COOKIE, as launch prints it")
    .option("--label <pattern>", "every unfinished job whose label matches (yours; an admin's: anyone's)")
    .option("--all", "every unfinished job (yours; an admin's: anyone's)")
    .option("--grace <duration>", "how long a running job has to stop before it is forced (default 5s)")
    .option("--json", "print the answer as JSON")
    .action(cancel);
}

async function cancel(text: string | undefined, flags: CancelFlags): Promise<void> {
  const forms = [text !== undefined, flags.label !== undefined, flags.all === true].filter(Boolean);
  if (forms.length !== 1)
    throw invalidArgument("cancel takes a HANDLE, --label PATTERN or --all: one of them");
  const grace = flags.grace === undefined ? {} : { grace: flags.grace };
  if (text !== undefined) {
    const handle = parseHandle(text);
    const state = await client().cancel(handle, grace);
    if (flags.json) printJson({ id: handle.id, state });
    else if (state === "running") process.stdout.write("running: cancel requested, forced after the grace\n");
    else process.stdout.write(`${state}\n`);
    return;
  }
  const count = await client().cancelAll({
    ...(flags.label === undefined ? {} : { label: flags.label }),
    ...grace,
  });
  if (flags.json) printJson({ cancelled: count });
  else process.stdout.write(`cancelled ${count} job(s)\n`);
}

/** A command on one job's handle, with --json. */
function onJob(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .argument("<handle>", "ID.COOKIE, as launch prints it")
    .option("--json", "print the answer as JSON");
}

function client(): FerryClient {
  return remoteFromEnv().client;
}

/**
 * The outcome of a job there is: one that found no job ends the command as `result` would (not
 * found, exit 3, the same line as every other command on a bad handle). An outcome never throws,
 * so when it could not be had the same handle's status is asked for, which throws what went wrong
 * (a daemon that cannot be reached exits 4).
 */
async function outcomeOrThrow(ferry: FerryClient, handle: Handle): Promise<ShownResult> {
  const answer = await ferry.outcome(handle);
  if (answer.state !== "not_found" && answer.state !== "unavailable") return answer as ShownResult;
  if (answer.state === "unavailable") {
    await ferry.status(handle);
    throw new FerryError(ErrorCode.StoreUnavailable, answer.error.message);
  }
  const code = isErrorCode(answer.error.code) ? answer.error.code : ErrorCode.NotFound;
  throw new FerryError(code, answer.error.message);
}
