/**
 * Running the daemon's jobs as a whole: `ferry purge` (admins), `ferry queue pause|resume`
 * (admins), `ferry workers` and `ferry stats` (admins and viewers).
 */
import { Command } from "commander";
import { JOB_STATES } from "../core/job.js";
import { AdminService, type StatsResponse, type Worker } from "../gen/ferry/v1/admin_pb.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import { printJson, printTable } from "./output.js";
import { remoteFromEnv } from "./remote.js";

interface JsonFlag {
  json?: boolean;
}

export function opsCommands(): Command[] {
  const purge = new Command("purge")
    .description("delete finished jobs older than --older-than (admins)")
    .requiredOption("--older-than <duration>", "finished at least this long ago, e.g. 7d")
    .option("--state <state>", "completed, failed or cancelled (default: all three)")
    .option("--json", "print {purged} as JSON")
    .action(async (flags: JsonFlag & { olderThan: string; state?: string }) => {
      const { count } = await remoteFromEnv()
        .client(JobService)
        .purge({ olderThan: flags.olderThan, ...(flags.state === undefined ? {} : { state: flags.state }) });
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
        const admin = remoteFromEnv().client(AdminService);
        const state = paused
          ? await admin.pauseQueue({ queue: name })
          : await admin.resumeQueue({ queue: name });
        if (flags.json) printJson({ queue: state.queue, paused: state.paused });
        else process.stdout.write(`${state.paused ? "paused" : "resumed"} queue ${state.queue}\n`);
      });
  }

  const workers = new Command("workers")
    .description("live workers of every process sharing the daemon's store")
    .option("--json", "one JSON object per worker, one per line")
    .action(async (flags: JsonFlag) => {
      const { workers } = await remoteFromEnv().client(AdminService).listWorkers({});
      if (flags.json) {
        for (const worker of workers) printJson(workerJson(worker));
        return;
      }
      printTable(
        ["NAME", "HOST", "PID", "QUEUES", "RUNNING", "STARTED", "LAST HEARTBEAT"],
        workers.map((w) => [
          w.name,
          w.host,
          String(w.pid),
          w.queues.join(","),
          String(w.running),
          w.startedAt,
          w.lastHeartbeatAt,
        ]),
      );
    });

  const stats = new Command("stats")
    .description("jobs by queue and state, and lifetime counters")
    .option("--json", "print the figures as one JSON object")
    .action(async (flags: JsonFlag) => {
      const figures = await remoteFromEnv().client(AdminService).stats({});
      if (flags.json) printJson(statsJson(figures));
      else printStats(figures);
    });

  return [purge, queue, workers, stats];
}

function workerJson(worker: Worker) {
  const { id, name, host, pid, queues, running, startedAt, lastHeartbeatAt } = worker;
  return { id, name, host, pid, queues, running, startedAt, lastHeartbeatAt };
}

/** Counts as numbers (the RPC's int64 fields would be strings in its own JSON). */
function statsJson(stats: StatsResponse) {
  return {
    queues: Object.fromEntries(
      stats.queues.map(({ queue, states }) => [
        queue,
        Object.fromEntries(Object.entries(states).map(([state, n]) => [state, Number(n)])),
      ]),
    ),
    launched: Number(stats.launched),
    completed: Number(stats.completed),
    failed: Number(stats.failed),
    cancelled: Number(stats.cancelled),
    timedOut: Number(stats.timedOut),
    avgRunMs: stats.avgRunMs,
  };
}

function printStats(stats: StatsResponse): void {
  printTable(
    ["QUEUE", ...JOB_STATES.map((state) => state.toUpperCase())],
    stats.queues.map(({ queue, states }) => [
      queue,
      ...JOB_STATES.map((state) => String(states[state] ?? 0n)),
    ]),
  );
  process.stdout.write(
    `launched ${stats.launched}  completed ${stats.completed}  failed ${stats.failed}  ` +
      `cancelled ${stats.cancelled}  timed out ${stats.timedOut}  average run ${Math.round(stats.avgRunMs)} ms\n`,
  );
}
