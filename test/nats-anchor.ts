/**
 * Vitest global setup: one stream that is never deleted on the shared NATS server. nats-server
 * 2.9 removes an account's store folder when its last stream is deleted, and a stream created at
 * that moment fails ("could not create storage directory"): with tests creating and deleting
 * streams side by side, the count must never reach zero.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

const ANCHOR = "ferry_test_anchor";

export default async function setup(): Promise<void> {
  if (!(process.env.FERRY_TEST_STORES?.split(",") ?? ["nats"]).includes("nats")) return;
  const nc = await connect({ servers: process.env.FERRY_TEST_NATS_URL ?? "nats://127.0.0.1:4222" });
  try {
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) names.push(name);
    if (!names.includes(ANCHOR)) await jsm.streams.add({ name: ANCHOR, subjects: [ANCHOR], max_msgs: 1 });
  } finally {
    await nc.close();
  }
}
