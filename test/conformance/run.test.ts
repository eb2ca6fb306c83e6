import { describe, expect, it } from "vitest";
import {
  defineJob,
  ErrorCode,
  Ferry,
  FerryError,
  type LaunchedHandle,
  registerEncoder,
  type Worker,
} from "../../src/index.js";
import { plainNewJob } from "../helpers/new-job.js";
import { collect, eventually, sleep } from "../helpers/temp.js";
import { type SubjectHarness, useSubject } from "./setup.js";
import { LIBRARY_SUBJECTS, SUBJECTS } from "./stores.js";

/** Starts a worker on the test's Ferry: handlers run in this process, whoever makes the calls. */
const workerStarter =
  (t: SubjectHarness) =>
  async (options: Parameters<Ferry["worker"]>[0]): Promise<Worker> => {
    const worker = t.ferry.worker({ pollInterval: "50ms", ...options });
    await worker.start();
    return worker;
  };

describe.each(SUBJECTS)("running jobs on $name", (subject) => {
  const t = useSubject(subject);
  const startWorker = workerStarter(t);

  it("runs a job and hands its result out once", async () => {
    await startWorker({
      handlers: { "math.add": async (p: { a: number; b: number }) => ({ sum: p.a + p.b }) },
    });
    const h = await t.api.launch("math.add", { a: 2, b: 3 });
    const status = await t.api.wait(h, { timeout: "10s" });
    expect(status.state).toBe("completed");
    expect(status.attempts).toBe(1);
    expect((await t.api.status(h)).consumed).toBe(false);
    const result = await t.api.result(h);
    expect(result).toMatchObject({ id: h.id, state: "completed", value: { sum: 5 }, attempts: 1 });
    expect((await t.api.status(h)).consumed).toBe(true);
    await expect(t.api.result(h)).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it("runs handlers that return plain values or thenables, not only promises", async () => {
    await startWorker({
      handlers: {
        "demo.sync": (n: number) => n + 1,
        // biome-ignore lint/suspicious/noThenProperty: the point of the test is a thenable that is no Promise.
        "demo.thenable": (n: number) => ({ then: (resolve: (v: number) => void) => resolve(n * 10) }),
      },
    });
    const sync = await t.api.launch("demo.sync", 1);
    const thenable = await t.api.launch("demo.thenable", 2);
    await t.api.drain([sync, thenable], { timeout: "10s" });
    expect((await t.api.result(sync)).value).toBe(2);
    expect((await t.api.result(thenable)).value).toBe(20);
  });

  it("hands a result to exactly one of many concurrent collectors", async () => {
    await startWorker({ handlers: { "demo.value": async () => "v" } });
    const h = await t.api.launch("demo.value", null);
    await t.api.wait(h, { timeout: "10s" });
    const other = await t.otherApi();
    const answers = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? other : t.api).result(h)),
    );
    expect(answers.filter((a) => a.status === "fulfilled")).toHaveLength(1);
  });

  it("hands out a result that reads as the same JSON whoever collects it", async () => {
    const value = { at: new Date(0), list: [new Date(1), "x", 2, null, { deep: true }] };
    await startWorker({ handlers: { "demo.dated": async () => value } });
    const h = await t.api.launch("demo.dated", null);
    await t.api.wait(h, { timeout: "10s" });
    expect(JSON.stringify((await t.api.result(h)).value)).toBe(JSON.stringify(value));
  });

  it("says FERRY_NOT_FINISHED for an unfinished job, and outcome never throws", async () => {
    const h = await t.api.launch("nobody.runs.this", {});
    await expect(t.api.result(h)).rejects.toMatchObject({ code: ErrorCode.NotFinished });
    expect(await t.api.outcome(h)).toEqual({ id: h.id, state: "queued" });
    expect(await t.api.outcome({ id: h.id, cookie: "AAAAAAAAAAAAAAAAAAAAAA" })).toMatchObject({
      state: "not_found",
      error: { code: ErrorCode.NotFound },
    });
    await startWorker({ handlers: { "nobody.runs.this": async () => 7 } });
    await t.api.wait(h, { timeout: "10s" });
    expect(await t.api.outcome(h)).toMatchObject({ state: "completed", value: 7 });
  });

  it("wait times out with FERRY_TIMEOUT without touching the job", async () => {
    const h = await t.api.launch("nobody.runs.this", {});
    const began = Date.now();
    await expect(t.api.wait(h, { timeout: "150ms" })).rejects.toMatchObject({ code: ErrorCode.Timeout });
    expect(Date.now() - began).toBeGreaterThanOrEqual(140);
    expect((await t.api.status(h)).state).toBe("queued");
  });

  it("run launches, waits and collects; on timeout it cancels the job", async () => {
    await startWorker({
      handlers: {
        "demo.double": async (n: number) => n * 2,
        "demo.slow": async (_: unknown, ctx) => {
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          throw ctx.signal.reason;
        },
      },
    });
    expect(await t.api.run("demo.double", 21, { timeout: "10s" })).toMatchObject({
      state: "completed",
      value: 42,
    });
    await expect(t.api.run("demo.slow", null, { timeout: "200ms", attempts: 1 })).rejects.toMatchObject({
      code: ErrorCode.Timeout,
    });
    const [slow] = await collect(t.api.list({ handler: "demo.slow" }));
    await eventually(async () => {
      const [row] = await collect(t.api.list({ handler: "demo.slow" }));
      return row?.state === "cancelled" || row?.state === "failed";
    }, "the timed-out run to end");
    expect(slow).toBeDefined();
  });

  it("waitAny answers the first to finish and drain waits for all", async () => {
    await startWorker({
      concurrency: 4,
      handlers: { "demo.sleep": async (ms: number) => sleep(ms).then(() => ms) },
    });
    const slow = await t.api.launch("demo.sleep", 600);
    const fast = await t.api.launch("demo.sleep", 10);
    const first = await t.api.waitAny([slow, fast], { timeout: "10s" });
    expect(first.index).toBe(1);
    expect(first.handle.id).toBe(fast.id);
    const all = await t.api.drain([slow, fast], { timeout: "10s" });
    expect(all.map((s) => s.state)).toEqual(["completed", "completed"]);
  });

  it("watch yields state and progress until the job finishes", async () => {
    // Watch samples the job's state: the handler moves on only once the watcher saw each step,
    // so a loaded machine cannot make two steps fall into one sample.
    const seenOnce = new Map<string, () => void>();
    const seenNow = (step: string) => new Promise<void>((resolve) => seenOnce.set(step, resolve));
    const running = seenNow("running");
    const half = seenNow("running:0.5");
    const most = seenNow("running:0.9");
    await startWorker({
      handlers: {
        "demo.steps": async (_: unknown, ctx) => {
          await running;
          await ctx.progress(0.5);
          await half;
          await ctx.progress(0.9);
          await most;
          return "done";
        },
      },
    });
    const h = await t.api.launch("demo.steps", {});
    const seen: string[] = [];
    for await (const event of t.api.watch(h)) {
      const step = `${event.state}:${event.progress ?? "-"}`;
      seen.push(step);
      if (event.state === "running") seenOnce.get("running")?.();
      seenOnce.get(step)?.();
    }
    expect(seen[0]).toMatch(/^(queued|running):/);
    expect(seen).toContain("running:0.5");
    expect(seen).toContain("running:0.9");
    expect(seen.indexOf("running:0.5")).toBeLessThan(seen.indexOf("running:0.9"));
    expect(seen.at(-1)).toBe("completed:1");
  });

  it("typed jobs validate their payload at launch and in the worker", async () => {
    const schema = {
      parse(value: unknown): { to: string } {
        if (typeof (value as { to?: unknown })?.to !== "string") throw new Error("to must be a string");
        return value as { to: string };
      },
    };
    const sendEmail = defineJob({
      name: "email.send",
      schema,
      attempts: 2,
      handler: async (p: { to: string }) => ({ sent: p.to }),
    });
    await startWorker({ handlers: [sendEmail] });
    const h = await t.api.launch(sendEmail, { to: "a@example.com" });
    expect((await t.api.status(h)).maxAttempts).toBe(2);
    await t.api.wait(h, { timeout: "10s" });
    expect((await t.api.result(h)).value).toEqual({ sent: "a@example.com" });
    await expect(t.api.launch(sendEmail, { to: 1 } as never)).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
  });

  it("a worker takes only jobs it has handlers for, from its own queues, honouring pause", async () => {
    await startWorker({ queues: ["a"], handlers: { "demo.known": async () => 1 } });
    const unknown = await t.api.launch("demo.unknown", {}, { queue: "a" });
    const otherQueue = await t.api.launch("demo.known", {}, { queue: "b" });
    await t.api.pauseQueue("a");
    const paused = await t.api.launch("demo.known", {}, { queue: "a" });
    await sleep(300);
    expect((await t.api.status(unknown)).state).toBe("queued");
    expect((await t.api.status(otherQueue)).state).toBe("queued");
    expect((await t.api.status(paused)).state).toBe("queued");
    await t.api.resumeQueue("a");
    expect((await t.api.wait(paused, { timeout: "10s" })).state).toBe("completed");
  });

  it("runs higher priority first", async () => {
    const order: number[] = [];
    const low = await t.api.launch("demo.order", 1, { priority: 0 });
    const high = await t.api.launch("demo.order", 2, { priority: 10 });
    await startWorker({
      concurrency: 1,
      handlers: { "demo.order": async (n: number) => void order.push(n) },
    });
    await t.api.drain([low, high], { timeout: "10s" });
    expect(order).toEqual([2, 1]);
  });

  it("runs a dependent job only after its parents complete, and fails it when a parent fails", async () => {
    const order: string[] = [];
    await startWorker({
      concurrency: 4,
      handlers: {
        "demo.step": async (name: string) => {
          await sleep(name === "parent" ? 200 : 0);
          order.push(name);
        },
        "demo.boom": async () => {
          throw new Error("boom");
        },
      },
    });
    const parent = await t.api.launch("demo.step", "parent");
    // Named twice: still one parent to wait for.
    const child = await t.api.launch("demo.step", "child", { dependsOn: [parent, parent] });
    await t.api.drain([parent, child], { timeout: "10s" });
    expect(order).toEqual(["parent", "child"]);

    const bad = await t.api.launch("demo.boom", {}, { attempts: 1 });
    const orphan = await t.api.launch("demo.step", "orphan", { dependsOn: [bad] });
    const grandchild = await t.api.launch("demo.step", "grandchild", { dependsOn: [orphan] });
    const statuses = await t.api.drain([bad, orphan, grandchild], { timeout: "10s" });
    expect(statuses.map((s) => s.state)).toEqual(["failed", "failed", "failed"]);
    expect(statuses[1]!.errorInfo?.code).toBe("FERRY_DEPENDENCY_FAILED");
    expect(order).not.toContain("orphan");
    // A child launched after its parent already failed fails at once, and is counted.
    const before = (await t.api.stats()).failed;
    const late = await t.api.launch("demo.step", "late", { dependsOn: [bad] });
    expect((await t.api.status(late)).state).toBe("failed");
    expect((await t.api.stats()).failed).toBe(before + 1);
  });

  it("keeps at most groupConcurrency jobs of one group running", async () => {
    // Queue options are set by the process that opens the store.
    await t.ferry.store.setQueueOptions("tenants", { groupConcurrency: 2 });
    let running = 0;
    let peak = 0;
    await startWorker({
      queues: ["tenants"],
      concurrency: 8,
      handlers: {
        "demo.tenant": async () => {
          running += 1;
          peak = Math.max(peak, running);
          await sleep(60);
          running -= 1;
        },
      },
    });
    const handles = await t.api.launchMany(
      Array.from({ length: 10 }, () => ({
        handler: "demo.tenant",
        options: { queue: "tenants", group: "t-42" },
      })),
    );
    await t.api.drain(handles, { timeout: "20s" });
    expect(peak).toBe(2);
  });

  it("a launch at an idle worker starts at once, within its concurrency, cancellable, and released on stop", async () => {
    let live = 0;
    let most = 0;
    const worker = await startWorker({
      concurrency: 2,
      handlers: {
        "demo.hold": async (_n: number, ctx) => {
          live += 1;
          most = Math.max(most, live);
          try {
            await new Promise<void>((_, reject) =>
              ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
            );
          } finally {
            live -= 1;
          }
        },
      },
    });
    const handles: LaunchedHandle[] = [];
    for (let n = 0; n < 4; n++) handles.push(await t.api.launch("demo.hold", n));
    await eventually(() => live === 2, "two jobs running");
    await sleep(200);
    expect(most).toBe(2);
    const states = await Promise.all(handles.map((h) => t.api.status(h)));
    expect(states.map((s) => s.state).sort()).toEqual(["queued", "queued", "running", "running"]);
    expect(states.filter((s) => s.state === "running").every((s) => s.attempts === 1)).toBe(true);
    // A running job cancels; a queued one takes its slot.
    const first = handles[states.findIndex((s) => s.state === "running")]!;
    await t.api.cancel(first);
    expect((await t.api.wait(first, { timeout: "10s" })).state).toBe("cancelled");
    await eventually(
      async () =>
        (await Promise.all(handles.map((h) => t.api.status(h)))).filter((s) => s.state === "running")
          .length === 2,
      "a queued job in the freed slot",
    );
    expect(most).toBe(2);
    await worker.stop({ grace: "0s" });
    const after = await Promise.all(handles.filter((h) => h !== first).map((h) => t.api.status(h)));
    expect(after.every((s) => s.state === "queued" && s.attempts === 0)).toBe(true);
  });

  it("lists registered workers with heartbeats", async () => {
    const worker = await startWorker({
      name: "w-test",
      queues: ["default", "x"],
      handlers: { "demo.a": async () => 1 },
    });
    const workers = await collect(t.api.workers());
    const me = workers.find((w) => w.id === worker.id);
    expect(me).toMatchObject({ name: "w-test", pid: process.pid, queues: ["default", "x"] });
    await worker.stop();
    expect((await collect(t.api.workers())).find((w) => w.id === worker.id)).toBeUndefined();
  });

  it("refuses a grace over one hour", async () => {
    const h = await t.api.launch("demo.x", {});
    await expect(t.api.cancel(h, { grace: "61m" })).rejects.toBeInstanceOf(FerryError);
    await expect(t.api.cancel(h, { grace: "61m" })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    expect(await t.api.cancel(h, { grace: "1h" })).toBe("cancelled");
  });
});

/** How workers claim, prefetch, stop and report, and what the store records: the library's side. */
describe.each(LIBRARY_SUBJECTS)("workers running jobs on $name", (subject) => {
  const t = useSubject(subject);
  const startWorker = workerStarter(t);
  const { store } = subject;

  it("keeps a result it cannot decode here collectable, instead of consuming it", async () => {
    // An encoder with no decoder in this process: the worker can write the result, result() can't read it.
    class Opaque {}
    registerEncoder(
      `test.Opaque.${store.name}`,
      (v) => v instanceof Opaque,
      () => 1,
    );
    await startWorker({ handlers: { "demo.opaque": async () => new Opaque() } });
    const h = await t.api.launch("demo.opaque", null);
    expect((await t.api.wait(h, { timeout: "10s" })).state).toBe("completed");
    await expect(t.api.result(h)).rejects.toMatchObject({ code: ErrorCode.Serialization });
    expect((await t.api.status(h)).consumed).toBe(false);
    expect(await t.api.outcome({ id: "nonsense", cookie: 5 } as never)).toMatchObject({
      state: "not_found",
    });
  });

  it("starts at most groupRate jobs of one group per window, and other groups as usual", async () => {
    const { ferry } = t;
    const rate = { limit: 4, periodMs: 1_000 };
    const open = (groupRate: string) => Ferry.open({ store: ferry.store, queues: { rated: { groupRate } } });
    await expect(open("4 per second")).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    await (await open("4/s")).close();
    expect((await ferry.store.listQueues()).find((q) => q.name === "rated")).toMatchObject({
      groupRate: rate,
      groupConcurrency: null,
    });
    await startWorker({ queues: ["rated"], concurrency: 8, handlers: { "demo.rated": async () => "ok" } });
    const launch = (group: string, n: number) =>
      ferry.launchMany(
        Array.from({ length: n }, () => ({ handler: "demo.rated", options: { queue: "rated", group } })),
      );
    const limited = await launch("g-1", 10);
    const other = await launch("g-2", 3);
    const statuses = await ferry.drain([...limited, ...other], { timeout: "20s" });
    expect(statuses.every((s) => s.state === "completed")).toBe(true);
    // Starts by window, as the store counted them (its clock, the claim's start time).
    const windows = (from: typeof statuses) => {
      const counts = new Map<number, number>();
      for (const s of from) {
        const w = Math.floor(s.startedAt!.getTime() / rate.periodMs);
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
      return counts;
    };
    const limitedWindows = windows(statuses.slice(0, 10));
    expect(Math.max(...limitedWindows.values())).toBeLessThanOrEqual(rate.limit);
    expect(limitedWindows.size).toBeGreaterThanOrEqual(3);
    expect(Math.max(...windows(statuses.slice(10)).values())).toBeLessThanOrEqual(3);

    // One start per window, while waiters make the dispatches' snapshots stale (NATS once spent
    // the one start on each stale delivery and never started).
    await ferry.store.setQueueOptions("rated", { groupRate: { limit: 1, periodMs: 200 } });
    const single = await launch("g-3", 2);
    const more = await launch("g-4", 1);
    const ended = await ferry.drain([...single, ...more], { timeout: "20s" });
    expect(ended.map((s) => s.state)).toEqual(["completed", "completed", "completed"]);
  });

  it("stops gracefully, handing unfinished jobs back without using an attempt", async () => {
    const worker = await startWorker({
      handlers: {
        "demo.forever": async (_: unknown, ctx) => {
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        },
      },
    });
    const h = await t.api.launch("demo.forever", {});
    await eventually(async () => (await t.api.status(h)).state === "running", "the job to start");
    await worker.stop({ grace: "100ms" });
    const status = await t.api.status(h);
    expect(status.state).toBe("queued");
    expect(status.attempts).toBe(0);
  });

  it("prefetch claims ahead, runs one at a time, cancels a waiting job unrun, and releases the rest on stop", async () => {
    const ran: number[] = [];
    let inFlight = 0;
    let most = 0;
    const gate = { open: () => {} };
    const opened = new Promise<void>((resolve) => {
      gate.open = resolve;
    });
    const worker = await startWorker({
      concurrency: 1,
      prefetch: 3,
      handlers: {
        "demo.slow": async (n: number) => {
          inFlight += 1;
          most = Math.max(most, inFlight);
          ran.push(n);
          if (n === 0) await opened;
          inFlight -= 1;
          return n;
        },
      },
    });
    const handles = await t.api.launchMany(
      [0, 1, 2, 3, 4].map((n) => ({ handler: "demo.slow", payload: n, options: { priority: 10 - n } })),
    );
    // Job 0 runs and blocks; jobs 1-3 are claimed ahead (running in the store, not started here).
    await eventually(
      async () =>
        (await Promise.all(handles.map((h) => t.api.status(h)))).filter((s) => s.state === "running")
          .length === 4,
      "one running and three prefetched jobs",
    );
    expect(ran).toEqual([0]);
    expect((await t.api.status(handles[4]!)).state).toBe("queued");
    expect(await t.api.cancel(handles[2]!)).toBe("running");
    await eventually(
      async () => (await t.api.status(handles[2]!)).state === "cancelled",
      "the waiting job cancelled",
    );
    expect((await t.api.status(handles[2]!)).attempts).toBe(1);
    gate.open();
    await eventually(() => ran.length >= 4, "the others to run");
    expect(ran).not.toContain(2);
    expect(most).toBe(1);
    await t.api.drain([handles[0]!, handles[1]!, handles[3]!, handles[4]!], { timeout: "10s" });
    // Stopping hands prefetched jobs back unrun, with their attempt refunded.
    const gate2 = { open: () => {} };
    const blocked = new Promise<void>((resolve) => {
      gate2.open = resolve;
    });
    await worker.stop();
    const second = await startWorker({
      concurrency: 1,
      prefetch: 2,
      handlers: { "demo.block": async () => blocked },
    });
    const more = await t.api.launchMany([1, 2, 3].map((n) => ({ handler: "demo.block", payload: n })));
    await eventually(
      async () => (await Promise.all(more.map((h) => t.api.status(h)))).every((s) => s.state === "running"),
      "all three held by the second worker",
    );
    const stopping = second.stop({ grace: "50ms" });
    gate2.open();
    await stopping;
    const after = await Promise.all(more.map((h) => t.api.status(h)));
    expect(after.filter((s) => s.state === "queued" && s.attempts === 0).length).toBeGreaterThanOrEqual(2);
  });

  it("writes a dispatched job as a claim would, or stores it queued when its queue is paused", async () => {
    const worker = t.ferry.worker({ handlers: { "demo.x": async () => 1 } });
    const launch = async (queue: string) => {
      const job = plainNewJob("demo.x", queue);
      const [answer] = await t.ferry.store.enqueue([job], {
        dispatch: { workerId: worker.id, leaseMs: 30_000 },
      });
      return { answer: answer!, record: (await t.ferry.store.getJob(job.id))! };
    };
    const open = await launch("open");
    if (open.answer.claimed !== undefined) {
      // Honoured: exactly the state a claim leaves (dispatch is optional for a store).
      expect(open.answer.claimed).toMatchObject({ id: open.record.id, attempt: 1, fence: open.record.fence });
      expect(open.record).toMatchObject({ state: "running", attempts: 1, workerId: worker.id });
      expect(open.record.leaseExpiresAt! - open.record.startedAt!).toBe(30_000);
    } else {
      expect(open.record).toMatchObject({ state: "queued", attempts: 0, workerId: null });
    }
    if (t.ferry.store.kind === "postgres") expect(open.answer.claimed).toBeDefined();
    await t.api.pauseQueue("shut");
    const shut = await launch("shut");
    expect(shut.answer.claimed).toBeUndefined();
    expect(shut.record).toMatchObject({ state: "queued", attempts: 0, workerId: null, fence: 0 });
  });

  it("reports an outcome only once the store took it, and lease-lost when it was refused", async () => {
    const gate = { open: () => {} };
    const opened = new Promise<void>((resolve) => {
      gate.open = resolve;
    });
    const worker = await startWorker({
      handlers: {
        "demo.gated": async (n: number) => {
          if (n === 1) await opened;
          return n;
        },
      },
    });
    const completed: string[] = [];
    const lost: string[] = [];
    worker.on("job:completed", (e) => completed.push(e.id));
    worker.on("job:lease-lost", (e) => lost.push(e.id));
    const free = await t.api.launch("demo.gated", 0);
    await t.api.wait(free, { timeout: "10s" });
    await eventually(() => completed.includes(free.id), "the completion event");

    const taken = await t.api.launch("demo.gated", 1);
    await eventually(async () => (await t.api.status(taken)).state === "running", "the gated job to start");
    // Someone else (a rescuer, another worker) ends the attempt first.
    const record = (await t.ferry.store.getJob(taken.id))!;
    const error = { code: "E_TAKEN", message: "taken over", retryable: false, attempt: 1 };
    expect(
      await t.ferry.store.finish([
        { kind: "failed", id: taken.id, fence: record.fence, error, timedOut: false },
      ]),
    ).toEqual([true]);
    gate.open();
    await eventually(() => lost.includes(taken.id), "the lease-lost event");
    expect(completed).not.toContain(taken.id);
    expect((await t.api.status(taken)).errorInfo?.code).toBe("E_TAKEN");
  });
});
