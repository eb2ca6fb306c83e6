/**
 * `npm run bench -- --only remote-launch [--store sqlite|postgres|nats] [--jobs N] [--rounds N]`:
 * launches per second by 32 concurrent callers in one process through `ferry/client`, beside
 * `ferry.launch` in-process on the same kind of store, the modes taking turns in each round:
 *
 * - `in-process`: one Ferry, 32 callers (the baseline);
 * - `client-batched`: one client, 32 callers: their concurrent launches leave as `LaunchEach`
 *   batches over the client's one HTTP/2 connection;
 * - `client-single`: 32 clients, one caller each: every launch is its own `Launch` call.
 *
 * Each client mode also reports the daemon's CPU time per launch (µs), from /proc. The daemon
 * is a child process with authentication on (see lib/daemon-child.ts).
 *
 * The goal: client-batched >= 0.5 of in-process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type FerryClient } from "../src/client.js";
import { Ferry } from "../src/index.js";
import {
  benchPayload,
  type DaemonChild,
  freshStore,
  launchRate,
  median,
  startDaemonChild,
} from "./lib/daemon-child.js";
import { round } from "./lib/time.js";

const CALLERS = 32;
const MODES = ["in-process", "client-batched", "client-single"] as const;
type Mode = (typeof MODES)[number];
export const GOAL_BATCHED_VS_IN_PROCESS = 0.5;

interface Figure {
  readonly launchesPerS: number;
  /** The daemon's CPU per launch; none in-process. */
  readonly daemonCpuUsPerLaunch: number | undefined;
  /** This process's CPU per launch: the callers and the client (or the in-process Ferry). */
  readonly callerCpuUsPerLaunch: number;
}

/** CPU this process used while `work` ran, in µs, beside what `work` answered. */
async function withCpu<T>(work: () => Promise<T>): Promise<{ value: T; cpuUs: number }> {
  const before = process.cpuUsage();
  const value = await work();
  const used = process.cpuUsage(before);
  return { value, cpuUs: used.user + used.system };
}

async function clientRate(daemon: DaemonChild, mode: Mode, total: number): Promise<Figure> {
  const clientCount = mode === "client-batched" ? 1 : CALLERS;
  const clients: FerryClient[] = [];
  for (let i = 0; i < clientCount; i++)
    clients.push(await connect({ server: daemon.url, token: daemon.token }));
  const launch = (caller: number, n: number) =>
    clients[caller % clientCount]!.launch("ferry.echo", benchPayload(n));
  // Warm-up: connections, JIT, the quota's first count.
  await launchRate(CALLERS * 8, CALLERS, launch);
  const cpuBefore = daemon.cpuMicros();
  const { value: launchesPerS, cpuUs } = await withCpu(() => launchRate(total, CALLERS, launch));
  const daemonCpuUsPerLaunch = (daemon.cpuMicros() - cpuBefore) / total;
  return { launchesPerS, daemonCpuUsPerLaunch, callerCpuUsPerLaunch: cpuUs / total };
}

async function measure(mode: Mode, storeKind: string, total: number): Promise<Figure> {
  const store = freshStore(storeKind);
  const cwd = mkdtempSync(join(tmpdir(), "ferry-bench-remote-cwd-"));
  try {
    if (mode === "in-process") {
      const ferry = await Ferry.open({ store: store.url });
      try {
        // The daemon's launches carry their user as owner; so do these.
        const options = { queue: "default", owner: "bench" };
        const launch = (_: number, n: number) => ferry.launch("ferry.echo", benchPayload(n), options);
        await launchRate(CALLERS * 8, CALLERS, launch);
        const { value: launchesPerS, cpuUs } = await withCpu(() => launchRate(total, CALLERS, launch));
        return { launchesPerS, daemonCpuUsPerLaunch: undefined, callerCpuUsPerLaunch: cpuUs / total };
      } finally {
        await ferry.close();
      }
    }
    const daemon = await startDaemonChild(store.url, cwd);
    try {
      return await clientRate(daemon, mode, total);
    } finally {
      await daemon.stop();
    }
  } finally {
    await store.remove();
    rmSync(cwd, { recursive: true, force: true });
  }
}

interface ModeResult {
  readonly launches_per_s: number;
  readonly daemon_cpu_us_per_launch?: number;
  readonly caller_cpu_us_per_launch: number;
  readonly rounds: number[];
}

export interface RemoteLaunchReport {
  readonly params: Readonly<Record<string, number | string>>;
  readonly results: Readonly<Record<Mode, ModeResult>>;
  readonly ratios: { readonly batched_vs_in_process: number; readonly single_vs_in_process: number };
  readonly target: { readonly rule: string; readonly met: boolean };
}

export async function remoteLaunch(
  storeKind: string,
  total: number,
  rounds: number,
  log: (line: string) => void,
): Promise<RemoteLaunchReport> {
  const figures: Record<Mode, Figure[]> = { "in-process": [], "client-batched": [], "client-single": [] };
  for (let r = 1; r <= rounds; r++) {
    for (const mode of MODES) {
      const figure = await measure(mode, storeKind, total);
      figures[mode].push(figure);
      const daemonCpu =
        figure.daemonCpuUsPerLaunch === undefined
          ? ""
          : `, daemon CPU ${round(figure.daemonCpuUsPerLaunch, 1)} µs/launch`;
      const cpu = `${daemonCpu}, caller CPU ${round(figure.callerCpuUsPerLaunch, 1)} µs/launch`;
      log(
        `[bench] remote-launch / ${mode} (round ${r}/${rounds}): ${round(figure.launchesPerS, 1)} launches/s${cpu}`,
      );
    }
  }
  const resultOf = (mode: Mode): ModeResult => {
    const rates = figures[mode].map((f) => round(f.launchesPerS, 1));
    const cpu = figures[mode].flatMap((f) =>
      f.daemonCpuUsPerLaunch === undefined ? [] : [f.daemonCpuUsPerLaunch],
    );
    return {
      launches_per_s: median(rates),
      ...(cpu.length === 0 ? {} : { daemon_cpu_us_per_launch: round(median(cpu), 1) }),
      caller_cpu_us_per_launch: round(median(figures[mode].map((f) => f.callerCpuUsPerLaunch)), 1),
      rounds: rates,
    };
  };
  const results = Object.fromEntries(
    MODES.map((mode) => [mode, resultOf(mode)]),
  ) as RemoteLaunchReport["results"];
  const base = results["in-process"].launches_per_s;
  const ratios = {
    batched_vs_in_process: round(results["client-batched"].launches_per_s / base),
    single_vs_in_process: round(results["client-single"].launches_per_s / base),
  };
  return {
    params: { store: storeKind, jobs: total, callers: CALLERS, rounds },
    results,
    ratios,
    target: {
      rule: `batched_vs_in_process >= ${GOAL_BATCHED_VS_IN_PROCESS}`,
      met: ratios.batched_vs_in_process >= GOAL_BATCHED_VS_IN_PROCESS,
    },
  };
}
