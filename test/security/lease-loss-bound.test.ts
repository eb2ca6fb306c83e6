/**
 * A job whose attempts keep ending with the death of the process running it (a plugin that kills
 * its daemon, say) stops being retried: each rescue of a lost lease uses an attempt, and the third
 * in a row fails the job with FERRY_HANDLER_CRASHED however many attempts it has left. An attempt
 * that ends any other way starts the count again. On every store.
 */
import { describe, expect, it } from "vitest";
import { MAX_LEASE_LOSSES_IN_A_ROW } from "../../src/store/rescue.js";
import type { Store } from "../../src/store/store.js";
import { useStore } from "../conformance/setup.js";
import { STORES } from "../conformance/stores.js";
import { sleep } from "../helpers/temp.js";

/** Claims the job and lets its lease run out, as a worker killed mid-job leaves it; then rescues. */
async function loseLease(store: Store): Promise<{ requeued: number; failed: number }> {
  const {
    jobs: [job],
  } = await store.claim({
    workerId: "doomed",
    queues: ["default"],
    handlers: ["demo.job"],
    limit: 1,
    leaseMs: 100,
  });
  expect(job).toBeDefined();
  await sleep(250);
  return store.rescueExpired(60_000);
}

describe.each(STORES)("lease losses in a row on $name", (store) => {
  const t = useStore(store);
  const plenty = { attempts: 25, backoff: { type: "fixed", base: 0 } } as const;

  it("fails the job at the third lease loss in a row, with attempts to spare", async () => {
    expect(MAX_LEASE_LOSSES_IN_A_ROW).toBe(3);
    const h = await t.ferry.launch("demo.job", {}, plenty);
    for (let i = 1; i < MAX_LEASE_LOSSES_IN_A_ROW; i++) {
      expect(await loseLease(t.ferry.store)).toMatchObject({ requeued: 1, failed: 0 });
      const status = await t.ferry.status(h);
      expect(status).toMatchObject({ state: "queued", attempts: i });
      expect(status.errorInfo).toMatchObject({ code: "FERRY_HANDLER_CRASHED", retryable: true });
    }
    expect(await loseLease(t.ferry.store)).toMatchObject({ requeued: 0, failed: 1 });
    const result = await t.ferry.result(h);
    expect(result).toMatchObject({ state: "failed", attempts: 3 });
    expect(result.error).toMatchObject({
      code: "FERRY_HANDLER_CRASHED",
      retryable: false,
      attempt: 3,
      message: expect.stringMatching(/stopped renewing its lease 3 attempts in a row .*not retried again/),
    });
  });

  it("counts only losses in a row: an attempt that fails another way starts again", async () => {
    const h = await t.ferry.launch("demo.job", {}, plenty);
    await loseLease(t.ferry.store);
    await loseLease(t.ferry.store);
    // The third attempt ends with a thrown error, retried as usual.
    const {
      jobs: [job],
    } = await t.ferry.store.claim({
      workerId: "w",
      queues: ["default"],
      handlers: ["demo.job"],
      limit: 1,
      leaseMs: 30_000,
    });
    const error = { code: "FERRY_HANDLER_CRASHED", message: "boom", retryable: true, attempt: 3 };
    expect(
      await t.ferry.store.finish([
        { kind: "retry", id: job!.id, fence: job!.fence, error, delayMs: 0, timedOut: false },
      ]),
    ).toEqual([true]);
    // Two more losses are two in a row, not four: still retried.
    expect(await loseLease(t.ferry.store)).toMatchObject({ requeued: 1, failed: 0 });
    expect(await loseLease(t.ferry.store)).toMatchObject({ requeued: 1, failed: 0 });
    expect(await t.ferry.status(h)).toMatchObject({ state: "queued", attempts: 5 });
    expect(await loseLease(t.ferry.store)).toMatchObject({ requeued: 0, failed: 1 });
    expect(await t.ferry.status(h)).toMatchObject({ state: "failed", attempts: 6 });
  });
});
