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

export const createDriver: CreateDriver = async () => {
  await probePostgres();
  return createFerryDriver({
    name: "ferry-postgres",
    notes: {
      store: `${pgLabel()}?schema=<fresh schema per setup> (Ferry's defaults; schema dropped at teardown)`,
    },
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
};
