/**
 * Fault-test plumbing: a fresh store per test, worker processes that are always killed
 * afterwards, the ledger reader, and the audit that holds a run to Ferry's guarantees.
 *
 * Backends: FAULT_STORES lists the stores the fault tests run on. A store only has to hand out a
 * fresh URL; the worker process takes the URL, so PostgreSQL and NATS plug in by adding an entry.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach } from "vitest";
import { Ferry, type Handle, type JobStatus } from "../../src/index.js";
import { freshNatsPrefix, freshPgSchema } from "../conformance/stores.js";
import { collect, eventually, sleep, tempDir } from "../helpers/temp.js";
import type { LedgerEntry } from "./fixtures/ledger.js";

export type { LedgerEntry } from "./fixtures/ledger.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const WORKER_PROCESS = fileURLToPath(new URL("./fixtures/worker-process.ts", import.meta.url));

/**
 * Timings, in one place. Leases and intervals are seconds, not milliseconds, so a loaded 2-core
 * machine does not turn scheduling noise into lost leases. FAULT_SLACK_MS widens every bound.
 */
export const TIMING = {
  /** Default lease of a worker process. */
  leaseMs: 2_000,
  /** Lease for tests that freeze a worker "past its lease". */
  shortLeaseMs: 1_000,
  rescueMs: 1_000,
  pollMs: 100,
  /** Added to every "within" bound: process scheduling, SQLite locks, polling. */
  slackMs: Number(process.env.FAULT_SLACK_MS ?? 2_500),
  /** tsx compiles on start: give a cold worker process this long to say ready. */
  readyTimeoutMs: 45_000,
  /** How long any single "eventually" waits in a fault test. */
  waitMs: 45_000,
  /** Per-test timeout for vitest. */
  testMs: 120_000,
  /** Fixed backoff the fault tests give their jobs: a rescued attempt waits this long too. */
  retryBackoffMs: 500,
} as const;

/** Launch options for a predictable retry delay (the default backoff is exponential, with jitter). */
export const FIXED_RETRY = {
  backoff: { type: "fixed", base: TIMING.retryBackoffMs, jitter: 0 },
} as const;

export const ms = (n: number) => `${n}ms`;

// --- stores ----------------------------------------------------------------------------------

export interface FaultStore {
  readonly name: string;
  /** A fresh, empty store's URL, and how to remove it. `dir` is this test's scratch folder. */
  fresh(dir: string): Promise<{ url: string; cleanup: () => Promise<void> }>;
}

const sqlite: FaultStore = {
  name: "sqlite",
  async fresh(dir) {
    return { url: `sqlite:${join(dir, "ferry.db")}`, cleanup: async () => {} };
  },
};

const postgres: FaultStore = {
  name: "postgres",
  async fresh() {
    const { url, drop } = freshPgSchema();
    return { url, cleanup: drop };
  },
};

/** The machine's nats-server, a prefix of its own per test (deleted afterwards). */
const nats: FaultStore = {
  name: "nats",
  async fresh() {
    // Still behind its flag (docs/stores.md): set here, so worker processes inherit it too.
    const { url, drop } = freshNatsPrefix();
    return { url, cleanup: drop };
  },
};

/**
 * FERRY_FAULT_STORES (else FERRY_TEST_STORES) = sqlite,postgres,nats picks the stores; by default
 * SQLite and PostgreSQL in the main run. NATS runs in the serial phase (vitest.disruptive.config.ts
 * sets FERRY_FAULT_STORES=nats): its poison and SIGKILL tests missed their bounds once in the
 * loaded main run.
 */
const wanted = (process.env.FERRY_FAULT_STORES ?? process.env.FERRY_TEST_STORES)?.split(",") ?? [
  "sqlite",
  "postgres",
];
export const FAULT_STORES: readonly FaultStore[] = [sqlite, postgres, nats].filter((store) =>
  wanted.includes(store.name),
);

// --- worker processes ------------------------------------------------------------------------

export interface WorkerProcessOptions {
  readonly store: string;
  readonly ledger: string;
  readonly name: string;
  readonly leaseMs?: number;
  readonly rescueMs?: number;
  readonly pollMs?: number;
  readonly concurrency?: number;
  readonly queues?: readonly string[];
  readonly maintenance?: boolean;
  readonly graceMs?: number;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class WorkerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #out = "";

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    this.exited = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    const keep = (chunk: Buffer) => {
      this.#out = (this.#out + chunk.toString("utf8")).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (error) => keep(Buffer.from(`spawn error: ${String(error)}\n`)));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** stdout and stderr so far (the last 20 kB), for failure messages. */
  get output(): string {
    return this.#out;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Graceful stop (SIGTERM); answers how it exited. */
  async stop(timeoutMs = 20_000): Promise<Exit> {
    this.signal("SIGTERM");
    return withTimeout(this.exited, timeoutMs, `${this.name} to exit after SIGTERM`);
  }
}

/** Every child of this test process, across test files (a last resort, see below). */
function childRegistry(): Set<ChildProcess> {
  const key = Symbol.for("ferry.faults.children");
  const global = globalThis as Record<symbol, Set<ChildProcess> | undefined>;
  const existing = global[key];
  if (existing !== undefined) return existing;
  const children = new Set<ChildProcess>();
  global[key] = children;
  // Last resort: if the test process itself exits, take every child with it.
  process.once("exit", () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return children;
}
const everyChild = childRegistry();

/** Every process a test spawns; `killAll` (run in afterEach) SIGKILLs the ones still alive. */
export class ProcessPool {
  readonly #all: WorkerProcess[] = [];

  get all(): readonly WorkerProcess[] {
    return this.#all;
  }

  /** Starts `node --import tsx worker-process.ts` and waits for its ready line. */
  async spawn(options: WorkerProcessOptions): Promise<WorkerProcess> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FAULT_STORE: options.store,
      FAULT_LEDGER: options.ledger,
      FAULT_NAME: options.name,
      FAULT_LEASE: ms(options.leaseMs ?? TIMING.leaseMs),
      FAULT_RESCUE: ms(options.rescueMs ?? TIMING.rescueMs),
      FAULT_POLL: ms(options.pollMs ?? TIMING.pollMs),
      FAULT_CONCURRENCY: String(options.concurrency ?? 4),
      FAULT_QUEUES: (options.queues ?? ["default"]).join(","),
      FAULT_MAINTENANCE: options.maintenance === false ? "0" : "1",
      FAULT_GRACE: ms(options.graceMs ?? 5_000),
    };
    // Whatever loader flags the test runner uses are not the child's business.
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ["--import", "tsx", WORKER_PROCESS], {
      cwd: ROOT,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    everyChild.add(child);
    child.once("exit", () => everyChild.delete(child));
    const worker = new WorkerProcess(options.name, child);
    this.#all.push(worker);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        let line = "";
        const onData = (chunk: Buffer) => {
          line += chunk.toString("utf8");
          if (line.split("\n").some((l) => l.includes('"ready":true'))) {
            child.stdout?.off("data", onData);
            resolve();
          }
        };
        child.stdout?.on("data", onData);
        void worker.exited.then((exit) =>
          reject(
            new Error(`${options.name} exited before ready (${JSON.stringify(exit)}):\n${worker.output}`),
          ),
        );
      }),
      TIMING.readyTimeoutMs,
      `${options.name} to be ready`,
    );
    return worker;
  }

  /** SIGKILL every process still alive (stopped ones too) and wait until each has exited. */
  async killAll(): Promise<void> {
    await Promise.all(
      this.#all.map(async (worker) => {
        worker.signal("SIGKILL");
        await withTimeout(worker.exited, 10_000, `${worker.name} to die`).catch(() => undefined);
      }),
    );
  }
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The scheduler state of a process from /proc ("R", "S", "T" for stopped, …); undefined if gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

// --- the per-test environment ----------------------------------------------------------------

export interface FaultEnv {
  /** The store URL every process of this test opens. */
  readonly url: string;
  readonly ledgerPath: string;
  /** The test's own Ferry on the store: launches and inspects; runs no worker. */
  readonly ferry: Ferry;
  readonly procs: ProcessPool;
  /** Spawns a worker process on this test's store and ledger. */
  spawn(
    name: string,
    options?: Omit<WorkerProcessOptions, "store" | "ledger" | "name">,
  ): Promise<WorkerProcess>;
  ledger(): LedgerEntry[];
  /** Waits for the first ledger entry matching `match`. */
  waitFor(match: (entry: LedgerEntry) => boolean, what: string, timeoutMs?: number): Promise<LedgerEntry>;
}

/** A fresh store, ledger and Ferry per test; every spawned process is SIGKILLed afterwards. */
export function useFaultEnv(store: FaultStore): FaultEnv {
  const env = {} as { -readonly [K in keyof FaultEnv]: FaultEnv[K] };
  let dir: ReturnType<typeof tempDir> | undefined;
  let cleanupStore: (() => Promise<void>) | undefined;
  let ledgerAtEnd: string | undefined;

  beforeEach(async (context) => {
    dir = tempDir("ferry-fault-");
    const fresh = await store.fresh(dir.path);
    cleanupStore = fresh.cleanup;
    const procs = new ProcessPool();
    const ledgerPath = join(dir.path, "ledger.jsonl");
    writeFileSync(ledgerPath, "");
    env.url = fresh.url;
    env.ledgerPath = ledgerPath;
    env.procs = procs;
    env.ferry = await Ferry.open({ store: fresh.url });
    env.spawn = (name, options = {}) =>
      procs.spawn({ ...options, store: fresh.url, ledger: ledgerPath, name });
    env.ledger = () => readLedger(ledgerPath);
    env.waitFor = (match, what, timeoutMs = TIMING.waitMs) =>
      eventually(() => readLedger(ledgerPath).find(match), what, timeoutMs).then((entry) => entry!);
    ledgerAtEnd = undefined;
    // If this runs after afterEach removed the folder, it prints the copy afterEach kept.
    context.onTestFailed(() => {
      for (const worker of procs.all) {
        process.stderr.write(`--- ${worker.name} (pid ${worker.pid}) output:\n${worker.output}\n`);
      }
      const text = ledgerAtEnd ?? readText(ledgerPath);
      const tail = text.split("\n").slice(-40).join("\n");
      process.stderr.write(`--- ledger tail:\n${tail}\n`);
    });
  });

  afterEach(async () => {
    try {
      await env.procs?.killAll();
    } finally {
      if (env.ledgerPath !== undefined) ledgerAtEnd = readText(env.ledgerPath);
      await env.ferry?.close({ grace: 0 }).catch(() => undefined);
      await cleanupStore?.();
      dir?.remove();
    }
  });

  return env;
}

// --- the ledger ------------------------------------------------------------------------------

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Every complete line of the ledger, in file order. */
export function readLedger(path: string): LedgerEntry[] {
  const text = readFileSync(path, "utf8");
  const entries: LedgerEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    entries.push(JSON.parse(line) as LedgerEntry);
  }
  return entries;
}

export const ofJob = (entries: readonly LedgerEntry[], id: string, ev?: LedgerEntry["ev"]) =>
  entries.filter((e) => e.id === id && (ev === undefined || e.ev === ev));

// --- the audit -------------------------------------------------------------------------------

export interface Expected {
  readonly handle: Handle;
  /** The finished state this job must end in. */
  readonly state: "completed" | "failed" | "cancelled";
}

export interface JobAudit {
  readonly id: string;
  readonly status: JobStatus;
  /** The fence of the job's last claim, as the store keeps it. */
  readonly fence: number;
  readonly claims: readonly LedgerEntry[];
  readonly starts: readonly LedgerEntry[];
  readonly ends: readonly LedgerEntry[];
  /** Every outcome a worker wrote for it. */
  readonly writes: readonly LedgerEntry[];
}

export interface Audit {
  readonly jobs: ReadonlyMap<string, JobAudit>;
  /** Jobs whose handler started more than once. */
  readonly duplicates: number;
  /** Starts beyond the first, summed over all jobs. */
  readonly extraStarts: number;
  /**
   * Final outcomes (completed, failed, cancelled) written with a fence other than the one the
   * finished job holds: late writes of workers that had lost the job. The store refused them
   * (had one applied, the job would hold its fence).
   */
  readonly refused: readonly LedgerEntry[];
  /** Broken guarantees, one line each: expect this to equal []. */
  readonly problems: readonly string[];
}

const FINAL = new Set(["completed", "failed", "cancelled"]);

/**
 * Holds a run to the guarantees, from the store's final word and the ledger:
 * - every acknowledged job is finished, in the state expected;
 * - each fence was claimed by one worker only (no double claims), and a job never started more
 *   often than the store counted attempts (plus refunded releases and snoozes);
 * - nothing claimed or started it after it finished (not re-opened);
 * - a completed job was completed by the holder of its last fence: that worker claimed the final
 *   attempt, its handler ended it and it wrote the completion, and nothing started after that end;
 * - a final outcome written with any other fence was refused (the store answered false, or the
 *   job does not hold that fence). `refused` lists them for tests to assert on.
 * Duplicates (a job started more than once) are counted, for each test to assert on.
 */
export async function audit(
  ferry: Ferry,
  expected: readonly Expected[],
  ledger: readonly LedgerEntry[],
): Promise<Audit> {
  const byJob = new Map<string, LedgerEntry[]>();
  for (const entry of ledger) {
    if (entry.id === undefined) continue;
    const list = byJob.get(entry.id);
    if (list === undefined) byJob.set(entry.id, [entry]);
    else list.push(entry);
  }
  const problems: string[] = [];
  const refused: LedgerEntry[] = [];
  const jobs = new Map<string, JobAudit>();
  let duplicates = 0;
  let extraStarts = 0;
  for (const { handle, state } of expected) {
    const status = await ferry.status(handle);
    const fence = (await ferry.store.getJob(handle.id))?.fence ?? -1;
    const events = byJob.get(handle.id) ?? [];
    const of = (ev: LedgerEntry["ev"]) => events.filter((e) => e.ev === ev);
    const [claims, starts, ends, writes] = [of("claim"), of("start"), of("end"), of("finish")];
    jobs.set(handle.id, { id: handle.id, status, fence, claims, starts, ends, writes });
    const say = (what: string) => problems.push(`${handle.id} (${status.handler}): ${what}`);
    if (starts.length > 1) {
      duplicates += 1;
      extraStarts += starts.length - 1;
    }

    if (status.state !== state) say(`ended ${status.state}, expected ${state}`);
    const fences = claims.map((c) => c.fence);
    if (new Set(fences).size !== fences.length) say(`a fence was claimed twice: ${fences.join(",")}`);
    const refunds = writes.filter((w) => w.kind === "release" || w.kind === "snooze").length;
    if (starts.length > status.attempts + refunds) {
      say(`started ${starts.length} times but the store counted ${status.attempts} attempts`);
    }
    for (const start of starts) {
      if ((start.attempt ?? 0) > status.attempts)
        say(`started attempt ${start.attempt} of ${status.attempts}`);
    }
    const finishedAt = status.finishedAt?.getTime();
    if (finishedAt !== undefined) {
      const late = [...claims, ...starts].filter((e) => e.t > finishedAt);
      if (late.length > 0) say(`claimed or started ${late.length} time(s) after it finished`);
    }
    for (const write of writes) {
      if (!FINAL.has(write.kind ?? "") || write.fence === fence) continue;
      if (write.applied === true) say(`a final ${write.kind} with stale fence ${write.fence} was applied`);
      else refused.push(write);
    }
    if (status.state === "completed") {
      const winner = claims.find((c) => c.fence === fence);
      if (winner === undefined) {
        say(`no worker claimed its final fence ${fence}`);
        continue;
      }
      if (winner.attempt !== status.attempts) say(`final fence claimed as attempt ${winner.attempt}`);
      const completion = writes.find(
        (w) => w.kind === "completed" && w.fence === fence && w.pid === winner.pid,
      );
      if (completion === undefined) say(`the holder of fence ${fence} wrote no completion`);
      if (completion?.applied === false) say("the holder's completion was refused");
      const end = ends.find((e) => e.pid === winner.pid && e.attempt === winner.attempt);
      if (end === undefined) say(`the handler never ended the completing attempt ${winner.attempt}`);
      else if (starts.some((s) => s.t > end.t))
        say("started again after the run that completed it had ended");
    }
  }
  return { jobs, duplicates, extraStarts, refused, problems };
}

export { collect, eventually, sleep };
