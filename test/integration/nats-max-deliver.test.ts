/**
 * A dispatch that keeps being delivered and never finished (claimers that die between the pull and
 * the claim) reaches MaxDeliver: its job ends failed and the message leaves the work-queue stream,
 * where it would otherwise stay forever. Against the machine's nats-server.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, Ferry } from "../../src/index.js";
import { bandOf, natsNames } from "../../src/store/nats/names.js";
import { openNatsStore } from "../../src/store/nats/open.js";
import { freshNatsPrefix, NATS_URL } from "../conformance/stores.js";
import { eventually } from "../helpers/temp.js";

describe("MaxDeliver on the nats store", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("fails a job whose dispatch reached MaxDeliver and deletes the message", async () => {
    const { url, prefix, drop } = freshNatsPrefix();
    cleanups.push(drop);
    const store = await openNatsStore(url, { ackWaitMs: 300, maxDeliver: 2 });
    const ferry = await Ferry.open({ store });
    cleanups.push(async () => {
      await ferry.close();
      await store.close();
    });
    const handle = await ferry.launch("demo.poison", {});
    // Delivery 1: a worker claims it and dies without a word (its lease and AckWait run out).
    const claimed = await store.claim({
      workerId: "w1",
      queues: ["default"],
      handlers: ["demo.poison"],
      limit: 1,
      leaseMs: 300,
    });
    expect(claimed.jobs.map((j) => j.id)).toEqual([handle.id]);

    // Delivery 2: a claimer that dies between the pull and the claim (the message is never acked).
    const names = natsNames(prefix);
    const nc = await connect({ servers: new URL(NATS_URL).host });
    cleanups.push(() => nc.close());
    const consumer = await jetstream(nc).consumers.get(
      names.workStream,
      names.consumer("default", bandOf(0), "demo.poison"),
    );
    expect((await consumer.next({ expires: 5_000 }))?.info.deliveryCount).toBe(2);
    // The advisory fires while a pull waits once the last AckWait has passed.
    expect(await consumer.next({ expires: 2_000 })).toBeNull();

    await eventually(async () => (await ferry.status(handle)).state === "failed", "the job to fail");
    const status = await ferry.status(handle);
    expect(status.errorInfo).toMatchObject({ code: ErrorCode.HandlerCrashed, retryable: false });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(names.workStream)).state.messages).toBe(0);
  });
});
