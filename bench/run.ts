/**
 * `npm run bench [-- flags]`: runs the scenarios against each driver of a store set, one after the
 * other, prints one JSON document and writes it to bench/results/latest.json. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type DaemonLaunchReport, daemonLaunch } from "./daemon-launch.js";
import { createDriver, DRIVERS, STORE_SETS } from "./drivers/index.js";
import { machineInfo } from "./lib/machine.js";
import { type DriverOutcome, report, type ScenarioReport } from "./lib/report.js";
import { medianRound } from "./lib/rounds.js";
import { errorText, round } from "./lib/time.js";
import { type RemoteLaunchReport, remoteLaunch } from "./remote-launch.js";
import { bulk } from "./scenarios/bulk.js";
import { latency } from "./scenarios/latency.js";
import { rss } from "./scenarios/rss.js";
import type { Scenario } from "./scenarios/scenario.js";
import { throughput } from "./scenarios/throughput.js";
import { throughputProcs } from "./scenarios/throughput-procs.js";

const USAGE = `npm run bench -- [--store sqlite|postgres|nats] [--only throughput,bulk,latency,rss,throughput-procs,daemon-launch,remote-launch] [--drivers a,b]
  [--jobs N] [--rss-jobs N] [--concurrency 50] [--rate 200] [--seconds 10] [--warmup 1] [--rounds 1] [--out FILE]
--only defaults to throughput,bulk,latency,rss; throughput-procs, daemon-launch and remote-launch run only when named.
daemon-launch measures launches/s through the daemon over gRPC and Connect JSON against the store's in-process
rate; remote-launch the same through ferry/client, batched (one client, 32 callers) and single (32 clients),
with the daemon's CPU per launch (neither uses a driver; --jobs sets their launches per mode, default 20000).
--jobs N sets the job count of throughput and throughput-procs (default 50000), bulk (100000) and rss
(1000000); --rss-jobs overrides rss alone. --rounds N runs every scenario N times, the drivers
taking turns in each round, and reports each driver's median round (and every round's figure). PostgreSQL drivers use BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
Drivers: ${Object.keys(DRIVERS).join(", ")}. Stores: ${Object.keys(STORE_SETS).join(", ")}.`;
const SCENARIOS = [
  "throughput",
  "bulk",
  "latency",
  "rss",
  "throughput-procs",
  "daemon-launch",
  "remote-launch",
] as const;
/** Scenarios that start a daemon of their own and use no driver. */
const DAEMON_SCENARIOS: readonly string[] = ["daemon-launch", "remote-launch"];
/** Without --only. Not throughput-procs: two fresh setups of --jobs each cost about twice throughput's time. */
const DEFAULT_SCENARIOS: readonly string[] = ["throughput", "bulk", "latency", "rss"];
const DEFAULT_OUT = fileURLToPath(new URL("./results/latest.json", import.meta.url));

const { values: flags } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    only: { type: "string", default: DEFAULT_SCENARIOS.join(",") },
    drivers: { type: "string" },
    jobs: { type: "string" },
    "rss-jobs": { type: "string" },
    concurrency: { type: "string", default: "50" },
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "1" },
    rounds: { type: "string", default: "1" },
    out: { type: "string", default: DEFAULT_OUT },
    help: { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function positive(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`--${flag} must be a positive number, got "${value}"`);
  return n;
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
const set = STORE_SETS[flags.store] ?? fail(`unknown --store "${flags.store}"`);
const driverNames = flags.drivers ? list(flags.drivers) : [set.raw, set.subject, ...set.peers];
for (const name of driverNames) if (!(name in DRIVERS)) fail(`unknown driver "${name}"`);
const only = list(flags.only);
for (const id of only) if (!(SCENARIOS as readonly string[]).includes(id)) fail(`unknown scenario "${id}"`);

const jobs = flags.jobs === undefined ? undefined : Math.floor(positive("jobs", flags.jobs, 0));
const rssJobs = Math.floor(positive("rss-jobs", flags["rss-jobs"], jobs ?? 1_000_000));
const concurrency = Math.floor(positive("concurrency", flags.concurrency, 50));
const throughputJobs = jobs ?? 50_000;
const bulkJobs = jobs ?? 100_000;
const rounds = Math.floor(positive("rounds", flags.rounds, 1));
const latencyOptions = {
  rate: positive("rate", flags.rate, 200),
  seconds: positive("seconds", flags.seconds, 10),
  warmup: positive("warmup", flags.warmup, 1),
  concurrency,
};

// Timeouts assume at least ~200 jobs/s drained, ~500/s bulk-enqueued, ~1000/s for the rss fill.
const scenarios: Record<
  Exclude<(typeof SCENARIOS)[number], "daemon-launch" | "remote-launch">,
  () => Scenario
> = {
  throughput: () => throughput(throughputJobs, concurrency, 60_000 + throughputJobs * 5),
  // Per setup (it makes two): the same budget as throughput's.
  "throughput-procs": () => throughputProcs(throughputJobs, concurrency, 60_000 + throughputJobs * 5),
  bulk: () => bulk(bulkJobs, 60_000 + bulkJobs * 2),
  latency: () => latency(latencyOptions),
  rss: () => rss(rssJobs, 120_000 + rssJobs),
};

process.on("unhandledRejection", (err) => console.error(`[bench] unhandled rejection: ${errorText(err)}`));

const startedAt = new Date();
const drivers: Record<string, unknown> = {};
const usable: string[] = [];
// The daemon scenarios need no driver.
const driverScenarios = only.filter((id) => !DAEMON_SCENARIOS.includes(id));
for (const name of driverScenarios.length === 0 ? [] : driverNames) {
  try {
    const driver = await createDriver(name);
    drivers[name] = { notes: driver.notes };
    usable.push(name);
  } catch (err) {
    drivers[name] = { skipped: true, error: errorText(err) };
    console.error(`[bench] skipping ${name}: ${errorText(err)}`);
  }
}

const results: Record<
  string,
  ScenarioReport | DaemonLaunchReport | RemoteLaunchReport | { readonly skipped: string }
> = {};
for (const id of SCENARIOS) {
  if (!only.includes(id)) continue;
  if (id === "daemon-launch") {
    results[id] = await daemonLaunch(flags.store, jobs ?? 20_000, rounds, (line) => console.error(line));
    continue;
  }
  if (id === "remote-launch") {
    results[id] = await remoteLaunch(flags.store, jobs ?? 20_000, rounds, (line) => console.error(line));
    continue;
  }
  const skipped = set.skip?.[id];
  if (skipped !== undefined) {
    results[id] = { skipped };
    console.error(`[bench] ${id}: skipped for --store ${flags.store}: ${skipped}`);
    continue;
  }
  const scenario = scenarios[id]();
  // Drivers take turns within a round, so a noisy minute on the shared machine hits all of them.
  const runs: Record<string, DriverOutcome[]> = Object.fromEntries(usable.map((name) => [name, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const name of usable) {
      const label = rounds > 1 ? `${id} / ${name} (round ${round}/${rounds})` : `${id} / ${name}`;
      console.error(`[bench] ${label} …`);
      try {
        const outcome = await scenario.run(name);
        runs[name]!.push(outcome);
        console.error(
          "skipped" in outcome
            ? `[bench] ${label}: skipped: ${outcome.skipped}`
            : `[bench] ${label}: ${scenario.headline.metric} = ${outcome[scenario.headline.metric]}`,
        );
      } catch (err) {
        runs[name]!.push({ error: errorText(err) });
        console.error(`[bench] ${label} failed: ${errorText(err)}`);
      }
    }
  }
  const outcomes = Object.fromEntries(
    usable.map((name) => [name, medianRound(runs[name]!, scenario.headline.metric)]),
  );
  results[id] = report(scenario, set, outcomes);
}

const document = {
  started_at: startedAt.toISOString(),
  duration_s: round((Date.now() - startedAt.getTime()) / 1000, 1),
  store: flags.store,
  machine: machineInfo(),
  drivers,
  scenarios: results,
};
const json = JSON.stringify(document, null, 2);
console.log(json);
mkdirSync(dirname(flags.out), { recursive: true });
writeFileSync(flags.out, `${json}\n`);
console.error(`[bench] written to ${flags.out}`);
process.exit(0);
