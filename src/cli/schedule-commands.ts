/**
 * `ferry schedule add|list|pause|resume|cancel`: recurring jobs over the daemon's
 * ScheduleService. A schedule belongs to its maker and fires jobs owned by it; `add` replaces the
 * maker's own schedule of the same name. One whose owner lost the right to launch its handler is
 * paused by the scheduler, and `list` says why.
 */
import { Command } from "commander";
import type { ScheduleView, ScheduleWhen } from "../api/schedules.js";
import type { RemoteSchedules } from "../client/remote-schedules.js";
import { invalidArgument } from "../core/errors.js";
import { integerOption, readPayload } from "./args.js";
import { type LaunchFlags, launchOptionsOf, withLaunchOptions } from "./launch-commands.js";
import { cell, formatMs, printJson, printTable, time } from "./output.js";
import { remoteFromEnv } from "./remote.js";

interface AddFlags extends LaunchFlags {
  cron?: string;
  tz?: string;
  every?: string;
  repeat?: number;
}

export function scheduleCommand(): Command {
  const schedule = new Command("schedule").description("recurring jobs: add, list, pause, resume, cancel");

  const add = new Command("add")
    .description("fire HANDLER with the payload on a cron or every so often (replaces your NAME)")
    .argument("<name>", "the schedule's name: 1-128 of A-Z a-z 0-9 _ . : -")
    .argument("<handler>", "a registered handler name, e.g. ferry.echo")
    .argument("[json]", "the payload of each fired job as JSON; - reads it from stdin; none: null");
  withLaunchOptions(add, { delay: false, jobTimeout: true })
    .option("--cron <expr>", 'a cron expression, e.g. "0 6 * * *"')
    .option("--tz <zone>", "the cron's time zone (default UTC)")
    .option("--every <duration>", "fire this often, e.g. 15m (at least 1s)")
    .option(
      "--repeat <n>",
      "fire this many times, then stop (default: forever)",
      integerOption("--repeat", 1),
    )
    .option("--json", "print the schedule as JSON")
    .action(async (name: string, handler: string, payload: string | undefined, flags: AddFlags) => {
      if ((flags.cron === undefined) === (flags.every === undefined)) {
        throw invalidArgument("schedule add takes --cron EXPR or --every DURATION: one of them");
      }
      if (flags.tz !== undefined && flags.cron === undefined) throw invalidArgument("--tz goes with --cron");
      const repeat = flags.repeat === undefined ? {} : { repeat: flags.repeat };
      const when: ScheduleWhen =
        flags.cron === undefined
          ? { every: flags.every!, ...repeat }
          : { cron: flags.cron, ...(flags.tz === undefined ? {} : { tz: flags.tz }), ...repeat };
      const made = await schedules().create(name, when, await readPayload(payload), {
        ...launchOptionsOf(flags),
        handler,
      });
      if (flags.json) printJson(made);
      else process.stdout.write(`${made.id}\n`);
    });
  schedule.addCommand(add);

  schedule
    .command("list")
    .description("schedules (yours; viewers and admins: every one), and why one is paused")
    .option("--json", "one JSON object per schedule, one per line")
    .action(async (flags: { json?: boolean }) => {
      const all = await schedules().list();
      if (flags.json) {
        for (const one of all) printJson(one);
        return;
      }
      printTable(
        ["ID", "NAME", "HANDLER", "WHEN", "LEFT", "PAUSED", "NEXT RUN", "LAST FIRED"],
        all.map((s) => [
          s.id,
          s.name,
          s.handler,
          whenText(s),
          cell(s.repeatLeft),
          pausedCell(s),
          cell(time(s.nextRunAt)),
          cell(time(s.lastFiredAt)),
        ]),
      );
    });

  for (const verb of ["pause", "resume"] as const) {
    schedule
      .command(`${verb} <id>`)
      .description(verb === "pause" ? "stop firing until resumed" : "fire again (a missed tick fires once)")
      .option("--json", "print the schedule as JSON")
      .action(async (id: string, flags: { json?: boolean }) => {
        const changed = verb === "pause" ? await schedules().pause(id) : await schedules().resume(id);
        if (flags.json) printJson(changed);
        else
          process.stdout.write(
            `${verb === "pause" ? "paused" : "resumed"} schedule ${changed.name} (${changed.id})\n`,
          );
      });
  }

  schedule
    .command("cancel <id>")
    .description("delete the schedule; jobs it already fired go on")
    .option("--json", "print {id, cancelled} as JSON")
    .action(async (id: string, flags: { json?: boolean }) => {
      await schedules().cancel(id);
      if (flags.json) printJson({ id, cancelled: true });
      else process.stdout.write(`cancelled schedule ${id}\n`);
    });

  return schedule;
}

/** "no", "yes", or, when the scheduler paused it, "yes: " and why. */
const pausedCell = (s: ScheduleView): string =>
  !s.paused ? "no" : s.pausedReason === null ? "yes" : `yes: ${s.pausedReason}`;

const whenText = (s: ScheduleView): string =>
  s.cron !== null
    ? `cron ${s.cron} ${s.tz ?? "UTC"}`
    : s.everyMs !== null
      ? `every ${formatMs(s.everyMs)}`
      : "-";

function schedules(): RemoteSchedules {
  return remoteFromEnv().client.schedules;
}
