/**
 * `ferry list`: stored jobs, oldest first, as aligned columns or one JSON object per line. A
 * submitter sees its own jobs, a viewer every job without payload previews, an admin everything.
 * Pages of at most 1,000 are fetched until `--limit` rows are shown.
 */
import { Command } from "commander";
import type { JobState } from "../core/job.js";
import { integerOption } from "./args.js";
import { cell, percent, printJson, printTable } from "./output.js";
import { remoteFromEnv } from "./remote.js";

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
      const listing = remoteFromEnv().client.list({
        // The daemon checks the state's name: the CLI passes it on as given.
        ...(flags.state === undefined ? {} : { state: flags.state as JobState }),
        ...(flags.queue === undefined ? {} : { queue: flags.queue }),
        ...(flags.label === undefined ? {} : { label: flags.label }),
        ...(flags.handler === undefined ? {} : { handler: flags.handler }),
        limit: flags.limit,
      });
      if (flags.json) {
        // One row a line as each page comes: a long listing starts printing at once.
        for await (const row of listing) printJson(row);
        return;
      }
      const rows = [];
      for await (const row of listing) rows.push(row);
      printTable(
        ["ID", "HANDLER", "QUEUE", "STATE", "ATTEMPTS", "PROGRESS", "LABEL", "LAUNCHED", "ERROR"],
        rows.map((row) => [
          row.id,
          row.handler,
          row.queue,
          row.state,
          String(row.attempts),
          row.progress === null ? "-" : percent(row.progress),
          cell(row.label),
          row.launchedAt.toISOString(),
          // Viewers get the error's code only.
          cell(firstLine(row.lastError ?? row.lastErrorCode)),
        ]),
      );
    });
}

/** An error's first line, cut so the table stays one line per job (--json has it whole). */
function firstLine(text: string | null): string | undefined {
  const line = text?.split("\n")[0] ?? undefined;
  return line !== undefined && line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
