/**
 * Ferry on its NATS JetStream store, under a fresh name prefix per setup (`?prefix=` in the store
 * URL). Until src/store/nats/ lands, Ferry.open refuses nats URLs: setup then rejects with Ferry's
 * message and the harness reports it as this driver's error.
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
