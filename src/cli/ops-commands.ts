/**
 * Running the daemon's jobs as a whole: `ferry purge` (admins), `ferry queue pause|resume`
 * (admins), `ferry workers` and `ferry stats` (admins and viewers).
 */
import { Command } from "commander";
import { JOB_STATES } from "../core/job.js";
import type { StoreStats, WorkerInfo } from "../store/store.js";
import { printJson, printTable } from "./output.js";
import { remoteFromEnv } from "./remote.js";

interface JsonFlag {
  json?: boolean;
}

/** The finished states `purge --state` takes; the daemon refuses any other. */
type FinishedState = "completed" | "failed" | "cancelled";

export function opsCommands(): Command[] {
  const purge = new Command("purge")
    .description("delete finished jobs older than --older-than (admins)")
    .requiredOption("--older-than <duration>", "finished at least this long ago, e.g. 7d")
    .option("--state <state>", "completed, failed or cancelled (default: all three)")
    .option("--json", "print {purged} as JSON")
    .action(async (flags: JsonFlag & { olderThan: string; state?: string }) => {
      const count = await remoteFromEnv().client.purge({
        olderThan: flags.olderThan,
        ...(flags.state === undefined ? {} : { state: flags.state as FinishedState }),
      });
      if (flags.json) printJson({ purged: count });
      else process.stdout.write(`purged ${count} job(s)\n`);
    });

  const queue = new Command("queue").description("pause or resume a queue (admins)");
  for (const [verb, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const) {
    queue
      .command(`${verb} <queue>`)
      .description(
        paused ? "workers claim nothing from QUEUE until it is resumed" : "workers claim from QUEUE again",
      )
      .option("--json", "print {queue, paused} as JSON")
      .action(async (name: string, flags: JsonFlag) => {
        const { client } = remoteFromEnv();
        await (paused ? client.pauseQueue(name) : client.resumeQueue(name));
        if (flags.json) printJson({ queue: name, paused });
        else process.stdout.write(`${paused ? "paused" : "resumed"} queue ${name}\n`);
      });
  }

  const workers = new Command("workers")
    .description("live workers of every process sharing the daemon's store")
    .option("--json", "one JSON object per worker, one per line")
    .action(async (flags: JsonFlag) => {
      const all: WorkerInfo[] = [];
      for await (const worker of remoteFromEnv().client.workers()) all.push(worker);
      if (flags.json) {
        for (const worker of all) printJson(worker);
        return;
      }
      printTable(
        ["NAME", "HOST", "PID", "QUEUES", "RUNNING", "STARTED", "LAST HEARTBEAT"],
        all.map((w) => [
          w.name,
          w.host,
          String(w.pid),
          w.queues.join(","),
          String(w.running),
          new Date(w.startedAt).toISOString(),
          new Date(w.lastHeartbeatAt).toISOString(),
        ]),
      );
    });

  const stats = new Command("stats")
    .description("jobs by queue and state, and lifetime counters")
    .option("--json", "print the figures as one JSON object")
    .action(async (flags: JsonFlag) => {
      const figures = await remoteFromEnv().client.stats();
      if (flags.json) printJson(figures);
      else printStats(figures);
    });

  return [purge, queue, workers, stats];
}

function printStats(stats: StoreStats): void {
  printTable(
    ["QUEUE", ...JOB_STATES.map((state) => state.toUpperCase())],
    Object.entries(stats.byQueue).map(([queue, states]) => [
      queue,
      ...JOB_STATES.map((state) => String(states[state] ?? 0)),
    ]),
  );
  process.stdout.write(
    `launched ${stats.launched}  completed ${stats.completed}  failed ${stats.failed}  ` +
      `cancelled ${stats.cancelled}  timed out ${stats.timedOut}  average run ${Math.round(stats.avgRunMs)} ms\n`,
  );
}
