/**
 * Ferry on its PostgreSQL store, in a fresh schema per setup (`?schema=` in the store URL; Ferry
 * creates it). Until src/store/postgres/ lands, Ferry.open refuses postgres URLs: setup then rejects
 * with Ferry's message and the harness reports it as this driver's error.
 */
import type { CreateDriver } from "../driver.js";
import { dropSchema, PG_URL, pgLabel, probePostgres, uniqueSchema } from "../lib/pg.js";
import { createFerryDriver } from "./ferry-driver.js";

/** PG_URL with Ferry's own `schema` parameter added (any other parameters are kept for `pg`). */
function storeUrl(schema: string): string {
  const url = new URL(PG_URL);
  url.searchParams.set("schema", schema);
  return url.href;
}

/** Ferry on a fresh schema; `prefetchPerSlot` > 0 turns on the worker's local queue. */
export async function createPostgresFerryDriver(name: string, prefetchPerSlot = 0) {
  await probePostgres();
  return createFerryDriver({
    name,
    notes: {
      store: `${pgLabel()}?schema=<fresh schema per setup> (schema dropped at teardown)`,
      worker:
        prefetchPerSlot === 0
          ? "Ferry's defaults (no prefetch)"
          : `prefetch = ${prefetchPerSlot} x concurrency (claims ahead, like graphile-worker's local queue)`,
    },
    prefetchPerSlot,
    store: () => {
      let schema = "";
      return {
        async create() {
          schema = uniqueSchema("ferry");
          return storeUrl(schema);
        },
        async remove() {
          if (schema) await dropSchema(schema);
          schema = "";
        },
      };
    },
  });
}

export const createDriver: CreateDriver = () => createPostgresFerryDriver("ferry-postgres");
