import { describe, expect, it } from "vitest";
import type { Store, WorkerInfo } from "../../src/index.js";
import { sleep } from "../helpers/temp.js";
import { useStore } from "./setup.js";
import { STORES } from "./stores.js";

const workerInfo = (id: string): WorkerInfo => ({
  id,
  name: id,
  host: "test",
  pid: 1,
  queues: ["default"],
  running: 0,
  startedAt: Date.now(),
  lastHeartbeatAt: Date.now(),
});

const claimOne = async (store: Store, workerId: string, leaseMs = 30_000) => {
  const {
    jobs: [job],
  } = await store.claim({
    workerId,
    queues: ["default"],
    handlers: ["demo.job"],
    limit: 1,
    leaseMs,
  });
  return job;
};

describe.each(STORES)("leases, fencing and the rescuer on $name", (store) => {
  const t = useStore(store);

  it("gives a job to one claimer at a time, even with many racing", async () => {
    await t.ferry.launch("demo.job", {});
    const others = await Promise.all([t.shared(), t.shared(), t.shared()]);
    const stores = [t.ferry.store, ...others.map((f) => f.store)];
    const claims = await Promise.all(
      Array.from({ length: 32 }, (_, i) => claimOne(stores[i % stores.length]!, `w${i}`)),
    );
    expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
  });

  it("refuses a finish whose fence is stale", async () => {
    const h = await t.ferry.launch("demo.job", {});
    const job = (await claimOne(t.ferry.store, "w1"))!;
    expect(job.id).toBe(h.id);
    expect(job.attempt).toBe(1);
    const stale = await t.ferry.store.finish([
      { kind: "completed", id: job.id, fence: job.fence - 1, result: null },
    ]);
    expect(stale).toEqual([false]);
    expect((await t.ferry.status(h)).state).toBe("running");
    const fresh = await t.ferry.store.finish([
      { kind: "completed", id: job.id, fence: job.fence, result: null },
    ]);
    expect(fresh).toEqual([true]);
    const again = await t.ferry.store.finish([
      { kind: "completed", id: job.id, fence: job.fence, result: null },
    ]);
    expect(again).toEqual([false]);
  });

  it("rescues a job whose lease expired; the old holder can no longer finish it", async () => {
    const h = await t.ferry.launch("demo.job", {}, { attempts: 3, backoff: { type: "fixed", base: 0 } });
    const first = (await claimOne(t.ferry.store, "w1", 200))!;
    await sleep(300);
    const rescued = await t.ferry.store.rescueExpired(60_000);
    expect(rescued.requeued).toBe(1);
    const status = await t.ferry.status(h);
    expect(status.state).toBe("queued");
    expect(status.attempts).toBe(1);
    expect(status.errorInfo?.code).toBe("FERRY_HANDLER_CRASHED");
    const second = (await claimOne(t.ferry.store, "w2"))!;
    expect(second.attempt).toBe(2);
    expect(second.fence).toBeGreaterThan(first.fence);
    const late = await t.ferry.store.finish([
      { kind: "completed", id: first.id, fence: first.fence, result: new Uint8Array([49]) },
    ]);
    expect(late).toEqual([false]);
    const hb = await t.ferry.store.heartbeat(
      workerInfo("w1"),
      [{ id: first.id, fence: first.fence }],
      30_000,
    );
    expect(hb.lost).toEqual([first.id]);
    expect(
      await t.ferry.store.finish([{ kind: "completed", id: second.id, fence: second.fence, result: null }]),
    ).toEqual([true]);
  });

  it("applies the job's backoff to a rescued attempt", async () => {
    const h = await t.ferry.launch(
      "demo.job",
      {},
      { attempts: 3, backoff: { type: "fixed", base: "1h", max: "2h" } },
    );
    await claimOne(t.ferry.store, "w1", 100);
    await sleep(200);
    expect((await t.ferry.store.rescueExpired(60_000)).requeued).toBe(1);
    const status = await t.ferry.status(h);
    expect(status.state).toBe("scheduled");
    expect(status.runAt.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it("fails a rescued job whose attempts are used up", async () => {
    const h = await t.ferry.launch("demo.job", {}, { attempts: 1 });
    await claimOne(t.ferry.store, "w1", 100);
    await sleep(200);
    expect((await t.ferry.store.rescueExpired(60_000)).failed).toBe(1);
    expect((await t.ferry.status(h)).state).toBe("failed");
  });

  it("heartbeats renew leases and report cancellation requests", async () => {
    const h = await t.ferry.launch("demo.job", {});
    const job = (await claimOne(t.ferry.store, "w1", 300))!;
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      const answer = await t.ferry.store.heartbeat(workerInfo("w1"), [{ id: job.id, fence: job.fence }], 300);
      expect(answer.lost).toEqual([]);
    }
    expect((await t.ferry.store.rescueExpired(60_000)).requeued).toBe(0);
    await t.ferry.cancel(h, { grace: "10s" });
    const answer = await t.ferry.store.heartbeat(workerInfo("w1"), [{ id: job.id, fence: job.fence }], 300);
    expect(answer.cancelRequested.map((c) => c.id)).toEqual([job.id]);
    expect(answer.cancelRequested[0]!.graceLeftMs).toBeGreaterThan(5_000);
  });

  it("progress writes need the current fence", async () => {
    const h = await t.ferry.launch("demo.job", {});
    const job = (await claimOne(t.ferry.store, "w1"))!;
    expect(await t.ferry.store.setProgress({ id: job.id, fence: job.fence + 1 }, 0.3)).toBe(false);
    expect(await t.ferry.store.setProgress({ id: job.id, fence: job.fence }, 0.4)).toBe(true);
    expect((await t.ferry.status(h)).progress).toBe(0.4);
  });
});
