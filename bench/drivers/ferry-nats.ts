/**
 * Ferry on its NATS JetStream store, under a fresh name prefix per setup (`?prefix=` in the store
 * URL). The store is still behind FERRY_EXPERIMENTAL_NATS (docs/stores.md): the driver sets it.
 */
import type { CreateDriver } from "../driver.js";
import { deleteStreamsContaining, NATS_URL, natsLabel, probeNats, uniqueToken } from "../lib/nats.js";
import { createFerryDriver } from "./ferry-driver.js";

/** NATS_URL with Ferry's own `prefix` parameter added. */
function storeUrl(prefix: string): string {
  const url = new URL(NATS_URL);
  url.searchParams.set("prefix", prefix);
  return url.href;
}

export const createDriver: CreateDriver = async () => {
  const version = await probeNats();
  process.env.FERRY_EXPERIMENTAL_NATS = "1";
  return createFerryDriver({
    name: "ferry-nats",
    notes: {
      store: `${natsLabel()}?prefix=<fresh prefix per setup> (nats-server ${version}); every stream whose name holds the prefix (KV buckets included) is deleted at teardown`,
      worker: "Ferry's defaults (no prefetch)",
    },
    store: () => {
      let prefix = "";
      return {
        async create() {
          prefix = `ferry_bench_${uniqueToken()}`;
          return storeUrl(prefix);
        },
        async remove() {
          await deleteStreamsContaining(prefix);
          prefix = "";
        },
      };
    },
  });
};
