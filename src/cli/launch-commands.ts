/**
 * `ferry launch`, `ferry submit` and `ferry run`: a handler name, a JSON payload (an argument,
 * `-` for stdin, none for null) and the launch options as flags. `launch` prints the handle
 * `ID.COOKIE`, the only key to the job; `submit` prints the id (nobody collects the result);
 * `run` launches, waits with progress on a terminal and prints the result, cancelling the job
 * when `--timeout` passes first.
 */
import { Command } from "commander";
import type { RemoteLaunchOptions } from "../client/to-proto.js";
import { parseDuration } from "../core/duration.js";
import { formatHandle, integerOption, readPayload } from "./args.js";
import { followJob, isTimeout } from "./follow-job.js";
import { printResult, reportFailure } from "./job-views.js";
import { printJson } from "./output.js";
import { EXIT, remoteFromEnv } from "./remote.js";

/** The launch options a command may take as flags; `run` keeps `--timeout` for its wait. */
export interface LaunchFlags {
  queue?: string;
  delay?: string;
  timeout?: string;
  attempts?: number;
  priority?: number;
  label?: string;
  json?: boolean;
}

export function launchCommands(): Command[] {
  const launch = withLaunchOptions(launchable("launch", "store a job and print its handle ID.COOKIE"), {
    delay: true,
    jobTimeout: true,
  })
    .option("--json", "print the handle {id, cookie, deduplicated} as JSON")
    .action(async (handler: string, payload: string | undefined, flags: LaunchFlags) => {
      const handle = await client().launch(handler, await readPayload(payload), launchOptionsOf(flags));
      if (flags.json) printJson(handle);
      else process.stdout.write(`${formatHandle(handle)}\n`);
    });

  const submit = withLaunchOptions(
    launchable("submit", "store a job whose result nobody collects; print its id"),
    { delay: true, jobTimeout: true },
  )
    .option("--json", "print {id, deduplicated} as JSON")
    .action(async (handler: string, payload: string | undefined, flags: LaunchFlags) => {
      const submitted = await client().submit(handler, await readPayload(payload), launchOptionsOf(flags));
      if (flags.json) printJson(submitted);
      else process.stdout.write(`${submitted.id}\n`);
    });

  const run = withLaunchOptions(
    launchable("run", "launch, wait with progress on a terminal, print the result (exit 1 if it failed)"),
    { delay: true, jobTimeout: false },
  )
    .option("--timeout <duration>", "cancel the job and exit 1 if it has not finished by then, e.g. 30s")
    .option("--json", "print the result as JSON")
    .action(runJob);

  return [launch, submit, run];
}

async function runJob(handler: string, payload: string | undefined, flags: LaunchFlags): Promise<void> {
  const timeoutMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout, "--timeout");
  const { timeout: _waitTimeout, ...launchFlags } = flags;
  // Launch, wait and result rather than the client's `run`: the wait shows progress on a
  // terminal, and a timeout can name the job it cancelled.
  const ferry = client();
  const handle = await ferry.launch(handler, await readPayload(payload), launchOptionsOf(launchFlags));
  try {
    await followJob(ferry, handle, timeoutMs);
  } catch (error) {
    if (!isTimeout(error)) throw error;
    // As the library's run: a job nobody waits for any more is not left running.
    const state = await ferry.cancel(handle, { grace: 0 });
    // Unless it finished in the meantime: then its result is below.
    if (state === "cancelled" || state === "running" || state === "queued" || state === "scheduled") {
      if (flags.json) printJson({ id: handle.id, state, timedOut: true });
      process.stderr.write(
        `ferry: FERRY_TIMEOUT: job ${handle.id} did not finish within ${flags.timeout}: cancelled it\n`,
      );
      process.exitCode = EXIT.jobFailed;
      return;
    }
  }
  const result = await ferry.result(handle);
  printResult(result, flags.json === true);
  reportFailure(result);
}

/** HANDLER [JSON]: the arguments every launching command takes. */
function launchable(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .argument("<handler>", "a registered handler name, e.g. ferry.echo")
    .argument("[json]", "the payload as JSON; - reads it from stdin; none: null");
}

/** The launch options as flags; `--timeout` is the job's own unless the command keeps it. */
export function withLaunchOptions(command: Command, which: { delay: boolean; jobTimeout: boolean }): Command {
  command.option("--queue <name>", "the queue (default: default)");
  if (which.delay) command.option("--delay <duration>", "run no sooner than this from now, e.g. 5m");
  if (which.jobTimeout) command.option("--timeout <duration>", "each attempt's time limit, e.g. 30s");
  return command
    .option("--attempts <n>", "attempts before the job fails (default 3)", integerOption("--attempts", 1))
    .option("--priority <n>", "higher runs first (default 0)", integerOption("--priority"))
    .option("--label <label>", "a label to find or cancel it by (list --label, cancel --label)");
}

/** The flags as the library's launch options: unset flags stay unset, so the daemon's defaults apply. */
export function launchOptionsOf(flags: LaunchFlags): RemoteLaunchOptions {
  return {
    ...(flags.queue === undefined ? {} : { queue: flags.queue }),
    ...(flags.delay === undefined ? {} : { delay: flags.delay }),
    ...(flags.timeout === undefined ? {} : { timeout: flags.timeout }),
    ...(flags.attempts === undefined ? {} : { attempts: flags.attempts }),
    ...(flags.priority === undefined ? {} : { priority: flags.priority }),
    ...(flags.label === undefined ? {} : { label: flags.label }),
  };
}

function client() {
  return remoteFromEnv().client;
}
