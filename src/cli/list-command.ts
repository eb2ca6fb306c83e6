/**
 * `ferry list`: stored jobs, oldest first, as aligned columns or one JSON object per line. A
 * submitter sees its own jobs, a viewer every job without payload previews, an admin everything.
 * Pages of at most 1,000 are fetched until `--limit` rows are shown.
 */
import { Command } from "commander";
import { JobListRowSchema, JobService } from "../gen/ferry/v1/jobs_pb.js";
import { integerOption } from "./args.js";
import { cell, messageJson, percent, printJson, printTable } from "./output.js";
import { remoteFromEnv } from "./remote.js";

const PAGE = 1000;
const DEFAULT_LIMIT = 100;

interface ListFlags {
  state?: string;
  queue?: string;
  label?: string;
  handler?: string;
  limit: number;
  json?: boolean;
}

export function listCommand(): Command {
  return new Command("list")
    .description("stored jobs, oldest first (yours; viewers and admins: every job)")
    .option("--state <state>", "scheduled, queued, running, completed, failed or cancelled")
    .option("--queue <name>", "one queue only")
    .option("--label <pattern>", "labels matching this SQL LIKE pattern, e.g. nightly-%")
    .option("--handler <name>", "one handler only")
    .option(
      "--limit <n>",
      `at most this many rows (default ${DEFAULT_LIMIT})`,
      integerOption("--limit", 1),
      DEFAULT_LIMIT,
    )
    .option("--json", "one JSON object per job, one per line")
    .action(async (flags: ListFlags) => {
      const jobs = remoteFromEnv().client(JobService);
      const filter = {
        ...(flags.state === undefined ? {} : { state: flags.state }),
        ...(flags.queue === undefined ? {} : { queue: flags.queue }),
        ...(flags.label === undefined ? {} : { label: flags.label }),
        ...(flags.handler === undefined ? {} : { handler: flags.handler }),
      };
      const rows = [];
      let afterId: string | undefined;
      do {
        const page = await jobs.list({
          ...filter,
          limit: Math.min(PAGE, flags.limit - rows.length),
          ...(afterId === undefined ? {} : { afterId }),
        });
        rows.push(...page.jobs);
        afterId = page.nextAfterId;
      } while (afterId !== undefined && rows.length < flags.limit);

      if (flags.json) {
        for (const row of rows) printJson(messageJson(JobListRowSchema, row));
        return;
      }
      printTable(
        ["ID", "HANDLER", "QUEUE", "STATE", "ATTEMPTS", "PROGRESS", "LABEL", "LAUNCHED", "ERROR"],
        rows.map((row) => [
          row.id,
          row.handler,
          row.queue,
          row.state,
          String(row.attempts),
          row.progress === undefined ? "-" : percent(row.progress),
          cell(row.label),
          row.launchedAt,
          // Viewers get the error's code only.
          cell(firstLine(row.lastError ?? row.lastErrorCode)),
        ]),
      );
    });
}

/** An error's first line, cut so the table stays one line per job (--json has it whole). */
function firstLine(text: string | undefined): string | undefined {
  const line = text?.split("\n")[0];
  return line !== undefined && line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
