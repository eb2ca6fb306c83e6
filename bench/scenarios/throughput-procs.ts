/**
 * Drain throughput with two worker processes vs one: n no-op jobs pre-enqueued (untimed), then
 * drained by P child processes attached to the same store, each at the same concurrency; P = 1,
 * then P = 2 on a fresh setup. Timed from "start" sent to every child until every child has
 * stopped after n jobs were reported done (their in-flight jobs finished, as in throughput).
 */
import { createDriver } from "../drivers/index.js";
import { round } from "../lib/time.js";
import { withDriver } from "../lib/with-driver.js";
import { WorkerProcs } from "../lib/worker-procs.js";
import type { Figures, Scenario } from "./scenario.js";

/** Forking, loading tsx and the driver, attaching: untimed, but within the deadline. */
const CHILD_START_MS = 30_000;

interface Run {
  readonly seconds: number;
  readonly jobsPerS: number;
  readonly split: string;
  /** Jobs reported done beyond n: a job run twice (none expected). */
  readonly extra: number;
  /** CPU seconds the worker processes used during the timed drain, summed. */
  readonly cpuS: number;
}

export function throughputProcs(jobs: number, concurrency: number, timeoutMs: number): Scenario {
  const warmup = Math.min(1000, Math.ceil(jobs / 10));

  /** One fresh setup drained by `procs` children: a warm-up round, then the timed one. */
  const drainWith = (name: string, procs: number): Promise<Run> => {
    const deadlineMs = CHILD_START_MS + timeoutMs;
    // withDriver's own timeout is only a backstop: the group's deadline kills the children first.
    return withDriver(name, deadlineMs + 30_000, async (driver) => {
      const shared = driver.share?.() ?? "";
      const group = await WorkerProcs.open({ driver: name, shared, procs, concurrency, deadlineMs });
      try {
        // Each child's JIT warms up on about `warmup` jobs, as in throughput's warm-up drain.
        await driver.enqueueBulk(warmup * procs);
        await group.drain(warmup * procs);
        await driver.enqueueBulk(jobs);
        await driver.settle?.();
        const start = performance.now();
        const { done, cpuS } = await group.drain(jobs);
        const seconds = (performance.now() - start) / 1000;
        const total = done.reduce((sum, count) => sum + count, 0);
        return {
          seconds: round(seconds),
          jobsPerS: Math.round(jobs / seconds),
          split: done.join("/"),
          extra: total - jobs,
          cpuS: round(cpuS),
        };
      } finally {
        await group.close(); // before teardown removes the store under them
      }
    });
  };

  return {
    id: "throughput-procs",
    headline: { metric: "two_vs_one", better: "higher" },
    params: {
      jobs,
      concurrency_per_process: concurrency,
      warmup_jobs_per_process: warmup,
      processes: "1, then 2, each on a fresh setup; the parent only enqueues and counts",
      timed: "drain only: start sent to every child until every child stopped after n jobs done",
      cpu_s:
        "CPU time (user + system) the worker processes used in the timed drain, summed; the server's is not counted",
    },
    target: { kind: "none" },
    run: async (name): Promise<Figures> => {
      const probe = await createDriver(name);
      if (!probe.share || !probe.attach) {
        return { skipped: "not shareable across processes (the driver has no share/attach)" };
      }
      const one = await drainWith(name, 1);
      const two = await drainWith(name, 2);
      return {
        jobs,
        concurrency_per_process: concurrency,
        one_process_jobs_per_s: one.jobsPerS,
        one_process_seconds: one.seconds,
        one_process_cpu_s: one.cpuS,
        two_processes_jobs_per_s: two.jobsPerS,
        two_processes_seconds: two.seconds,
        two_processes_cpu_s: two.cpuS,
        two_processes_split: two.split,
        two_vs_one: round(two.jobsPerS / one.jobsPerS),
        extra_runs: one.extra + two.extra,
      };
    },
  };
}
