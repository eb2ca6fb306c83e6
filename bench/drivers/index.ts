/**
 * The driver list, in one place. To add a system: write bench/drivers/<name>.ts exporting
 * `createDriver`, add it to DRIVERS, and to a STORE_SETS entry if `--store` should pick it up.
 */
import type { BenchDriver, DriverModule } from "../driver.js";

export const DRIVERS: Readonly<Record<string, () => Promise<DriverModule>>> = {
  "raw-sqlite": () => import("./raw-sqlite.js"),
  "ferry-sqlite": () => import("./ferry-sqlite.js"),
  bullmq: () => import("./bullmq.js"),
};

/** Per store: Ferry on it (subject), the engine's raw limit (raw), and the peers it is compared with. */
export interface StoreSet {
  readonly subject: string;
  readonly raw: string;
  readonly peers: readonly string[];
}

export const STORE_SETS: Readonly<Record<string, StoreSet>> = {
  sqlite: { subject: "ferry-sqlite", raw: "raw-sqlite", peers: ["bullmq"] },
};

/** Loads a driver module and builds one fresh driver instance; rejects if either fails. */
export async function createDriver(name: string): Promise<BenchDriver> {
  const load = DRIVERS[name];
  if (!load) throw new Error(`unknown driver "${name}" (known: ${Object.keys(DRIVERS).join(", ")})`);
  const mod = await load();
  return mod.createDriver();
}
