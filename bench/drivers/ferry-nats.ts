/**
 * Ferry on its NATS JetStream store, under a fresh name prefix per setup (`?prefix=` in the store
 * URL).
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

/** Ferry on a fresh prefix; `prefetchPerSlot` > 0 turns on the worker's local queue. */
export async function createNatsFerryDriver(name: string, prefetchPerSlot = 0) {
  const version = await probeNats();
  return createFerryDriver({
    name,
    notes: {
      store: `${natsLabel()}?prefix=<fresh prefix per setup> (nats-server ${version}); every stream whose name holds the prefix (KV buckets included) is deleted at teardown`,
      worker:
        prefetchPerSlot === 0
          ? "Ferry's defaults (no prefetch)"
          : `prefetch = ${prefetchPerSlot} x concurrency (claims ahead, as raw-nats's consume() buffers)`,
    },
    prefetchPerSlot,
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
}

export const createDriver: CreateDriver = () => createNatsFerryDriver("ferry-nats");
