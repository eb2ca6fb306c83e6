/**
 * The driver list, in one place. To add a system: write bench/drivers/<name>.ts exporting
 * `createDriver`, add it to DRIVERS, and to a STORE_SETS entry if `--store` should pick it up.
 */
import type { BenchDriver, DriverModule } from "../driver.js";
import type { Target } from "../scenarios/scenario.js";

export const DRIVERS: Readonly<Record<string, () => Promise<DriverModule>>> = {
  "raw-sqlite": () => import("./raw-sqlite.js"),
  "ferry-sqlite": () => import("./ferry-sqlite.js"),
  bullmq: () => import("./bullmq.js"),
  "raw-pg": () => import("./raw-pg.js"),
  "ferry-postgres": () => import("./ferry-postgres.js"),
  "ferry-postgres-prefetch": () => import("./ferry-postgres-prefetch.js"),
  "graphile-worker": () => import("./graphile-worker.js"),
  "graphile-worker-localqueue": () => import("./graphile-worker-localqueue.js"),
  "pg-boss": () => import("./pg-boss.js"),
  "raw-nats": () => import("./raw-nats.js"),
  "ferry-nats": () => import("./ferry-nats.js"),
  "ferry-nats-prefetch": () => import("./ferry-nats-prefetch.js"),
};

/** Per store: Ferry on it (subject), the engine's raw limit (raw), and the peers it is compared with. */
export interface StoreSet {
  readonly subject: string;
  readonly raw: string;
  readonly peers: readonly string[];
  /** Scenarios that say nothing for this store, each with the reason (reported instead of figures). */
  readonly skip?: Readonly<Record<string, string>>;
  /** This store's issue targets where they differ from the scenario's own (by scenario id). */
  readonly targets?: Readonly<Record<string, Target>>;
}

export const STORE_SETS: Readonly<Record<string, StoreSet>> = {
  sqlite: { subject: "ferry-sqlite", raw: "raw-sqlite", peers: ["bullmq"] },
  postgres: {
    subject: "ferry-postgres",
    raw: "raw-pg",
    peers: ["ferry-postgres-prefetch", "graphile-worker-localqueue", "graphile-worker", "pg-boss"],
    // Issue 3: p99 no worse than 1.2x the raw loop's, and below graphile-worker's.
    targets: {
      bulk: { kind: "none" },
      latency: {
        kind: "max_ratio_vs_raw",
        value: 1.2,
        belowPeers: ["graphile-worker-localqueue", "graphile-worker"],
      },
    },
    skip: {
      rss:
        "every driver of this set keeps its queue in the PostgreSQL server: the client's RSS barely moves, and the " +
        "server's memory is its fixed shared_buffers (the queue costs it disk), so the figure would compare nothing",
    },
  },
  nats: {
    subject: "ferry-nats",
    raw: "raw-nats",
    peers: ["ferry-nats-prefetch"],
    // The NATS issue: drain at least 0.4x the raw JetStream loop's, p99 at most 2x its, no bulk target.
    targets: {
      throughput: { kind: "min_ratio_vs_raw", value: 0.4 },
      latency: { kind: "max_ratio_vs_raw", value: 2 },
      bulk: { kind: "none" },
    },
    skip: {
      rss:
        "the queue lives in the NATS server (a file-storage stream), not in the client: the client's RSS barely " +
        "moves, so the figure would compare nothing",
    },
  },
};

/** Loads a driver module and builds one fresh driver instance; rejects if either fails. */
export async function createDriver(name: string): Promise<BenchDriver> {
  const load = DRIVERS[name];
  if (!load) throw new Error(`unknown driver "${name}" (known: ${Object.keys(DRIVERS).join(", ")})`);
  const mod = await load();
  return mod.createDriver();
}
