import { describe, expect, it } from "vitest";
import { ErrorCode, type Worker } from "../../src/index.js";
import { eventually, sleep } from "../helpers/temp.js";
import { useSubject } from "./setup.js";
import { SUBJECTS } from "./stores.js";

const validUtf8 = (text: string) =>
  Buffer.from(text, "utf8").length <= 512 &&
  new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(text)) === text;

describe.each(SUBJECTS)("failures, retries, timeouts and cancellation on $name", (subject) => {
  const t = useSubject(subject);
  const startWorker = async (options: Parameters<typeof t.ferry.worker>[0]): Promise<Worker> => {
    const worker = t.ferry.worker({ pollInterval: "50ms", ...options });
    await worker.start();
    return worker;
  };
  const fast = { backoff: { type: "fixed", base: "10ms" } } as const;

  it("retries with backoff until attempts are used up, keeping the last error", async () => {
    let calls = 0;
    await startWorker({
      handlers: {
        "demo.flaky": async () => {
          calls += 1;
          throw Object.assign(new Error(`failure ${calls}`), { code: "E_FLAKY" });
        },
      },
    });
    const h = await t.api.launch("demo.flaky", {}, { attempts: 3, ...fast });
    const status = await t.api.wait(h, { timeout: "10s" });
    expect(status).toMatchObject({ state: "failed", attempts: 3 });
    expect(calls).toBe(3);
    const result = await t.api.result(h);
    expect(result.error).toMatchObject({
      code: "E_FLAKY",
      message: "failure 3",
      attempt: 3,
      retryable: false,
    });
  });

  it("succeeds on a later attempt", async () => {
    let calls = 0;
    await startWorker({
      handlers: {
        "demo.second": async (_: unknown, ctx) => {
          calls += 1;
          if (ctx.job.attempt < 2) throw new Error("not yet");
          return ctx.job.attempt;
        },
      },
    });
    const h = await t.api.launch("demo.second", {}, { attempts: 5, ...fast });
    await t.api.wait(h, { timeout: "10s" });
    expect(await t.api.result(h)).toMatchObject({ state: "completed", value: 2, attempts: 2 });
    expect(calls).toBe(2);
  });

  it("honours retryOn and ignoreOn", async () => {
    await startWorker({
      handlers: {
        "demo.code": async (code: string) => {
          throw Object.assign(new Error(code), { code });
        },
      },
    });
    const onlyTimeouts = await t.api.launch("demo.code", "E_OTHER", {
      attempts: 5,
      retryOn: ["E_RETRY"],
      ...fast,
    });
    const allowed = await t.api.launch("demo.code", "E_RETRY", {
      attempts: 3,
      retryOn: ["E_RETRY"],
      ...fast,
    });
    const ignored = await t.api.launch("demo.code", "E_FATAL", {
      attempts: 5,
      ignoreOn: ["E_FATAL"],
      ...fast,
    });
    const statuses = await t.api.drain([onlyTimeouts, allowed, ignored], { timeout: "10s" });
    expect(statuses.map((s) => [s.state, s.attempts])).toEqual([
      ["failed", 1],
      ["failed", 3],
      ["failed", 1],
    ]);
  });

  it("snooze runs again later without using an attempt; discard fails at once; ctx.cancel cancels", async () => {
    let snoozes = 0;
    await startWorker({
      handlers: {
        "demo.snooze": async (_: unknown, ctx) => {
          if (snoozes++ < 2) return ctx.snooze("20ms");
          return ctx.job.attempt;
        },
        "demo.discard": async (_: unknown, ctx) => ctx.discard("bad input"),
        "demo.cancel": async (_: unknown, ctx) => ctx.cancel("no longer needed"),
      },
    });
    const snoozed = await t.api.launch("demo.snooze", {}, { attempts: 1 });
    const discarded = await t.api.launch("demo.discard", {}, { attempts: 5 });
    const cancelled = await t.api.launch("demo.cancel", {}, { attempts: 5 });
    await t.api.drain([snoozed, discarded, cancelled], { timeout: "10s" });
    expect(await t.api.result(snoozed)).toMatchObject({ state: "completed", value: 1, attempts: 1 });
    expect(await t.api.result(discarded)).toMatchObject({
      state: "failed",
      attempts: 1,
      error: { message: "bad input", retryable: false },
    });
    expect(await t.api.result(cancelled)).toMatchObject({
      state: "cancelled",
      error: { code: ErrorCode.Cancelled, message: "no longer needed" },
    });
  });

  it("turns anything a handler throws into a failed attempt of at most 512 bytes of valid UTF-8", async () => {
    const circular: Record<string, unknown> = { name: "circular" };
    circular.self = circular;
    const throwers: Record<string, () => unknown> = {
      string: () => "plain string",
      null: () => null,
      undefined: () => undefined,
      circular: () => circular,
      getter: () =>
        Object.defineProperty(new Error("x"), "message", {
          get() {
            throw new Error("getter throws");
          },
        }),
      huge: () => new Error("é".repeat(5_000_000)),
      emoji: () => new Error(`${"a".repeat(511)}😀😀`),
      proxy: () =>
        new Proxy(
          {},
          {
            get() {
              throw new Error("proxy");
            },
          },
        ),
    };
    await startWorker({
      handlers: {
        "demo.throw": async (kind: string) => {
          throw throwers[kind]!();
        },
      },
    });
    const handles = await t.api.launchMany(
      Object.keys(throwers).map((kind) => ({
        handler: "demo.throw",
        payload: kind,
        options: { attempts: 1 },
      })),
    );
    const statuses = await t.api.drain(handles, { timeout: "20s" });
    for (const status of statuses) {
      expect(status.state).toBe("failed");
      expect(validUtf8(status.errorInfo!.message)).toBe(true);
    }
    expect(statuses[0]!.errorInfo!.message).toBe("plain string");
    expect(statuses[1]!.errorInfo!.message).toBe("null");
  });

  it("cuts stored errors to the worker's errorMaxBytes, and refuses a limit out of range", async () => {
    for (const errorMaxBytes of [63, 65_537, 100.5]) {
      expect(() => t.ferry.worker({ errorMaxBytes, handlers: {} })).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidArgument }),
      );
    }
    await startWorker({
      errorMaxBytes: 2_000,
      handlers: {
        "demo.long": async (length: number) => {
          throw new Error("é".repeat(length));
        },
      },
    });
    const handle = await t.api.launch("demo.long", 5_000, { attempts: 1 });
    const [status] = await t.api.drain([handle], { timeout: "10s" });
    const bytes = Buffer.byteLength(status!.errorInfo!.message);
    expect(bytes).toBeGreaterThan(1_900);
    expect(bytes).toBeLessThanOrEqual(2_000);
  });

  it("fails the attempt of a handler whose detached timer rejects or throws, and the worker goes on", async () => {
    await startWorker({
      handlers: {
        "demo.detached-reject": async () => {
          setTimeout(() => {
            Promise.reject(new Error("rejected later"));
          }, 5);
          await sleep(2_000);
          return "never";
        },
        "demo.detached-throw": async () => {
          setTimeout(() => {
            throw new Error("thrown later");
          }, 5);
          await sleep(2_000);
          return "never";
        },
        "demo.ok": async () => "fine",
      },
    });
    const rejecting = await t.api.launch("demo.detached-reject", {}, { attempts: 1 });
    const throwing = await t.api.launch("demo.detached-throw", {}, { attempts: 1 });
    const [a, b] = await t.api.drain([rejecting, throwing], { timeout: "10s" });
    expect(a).toMatchObject({ state: "failed", errorInfo: { message: "rejected later" } });
    expect(b).toMatchObject({ state: "failed", errorInfo: { message: "thrown later" } });
    const ok = await t.api.launch("demo.ok", {});
    expect((await t.api.wait(ok, { timeout: "10s" })).state).toBe("completed");
  });

  it("a timeout aborts the signal and frees the slot even if the handler ignores it", async () => {
    let aborted: unknown;
    await startWorker({
      concurrency: 1,
      handlers: {
        "demo.stubborn": async (_: unknown, ctx) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = ctx.signal.reason;
          });
          await sleep(60_000);
        },
        "demo.next": async () => "ran",
      },
    });
    const stubborn = await t.api.launch("demo.stubborn", {}, { timeout: "150ms", attempts: 1 });
    const next = await t.api.launch("demo.next", {});
    const [s, n] = await t.api.drain([stubborn, next], { timeout: "10s" });
    expect(s).toMatchObject({ state: "failed", errorInfo: { code: ErrorCode.Timeout } });
    expect(n!.state).toBe("completed");
    expect(aborted).toMatchObject({ code: ErrorCode.Timeout });
    expect((await t.api.stats()).timedOut).toBeGreaterThanOrEqual(1);
  });

  it("cancels a waiting job at once and a running one through its signal", async () => {
    const waiting = await t.api.launch("demo.cooperative", {}, { delay: "1h" });
    expect(await t.api.cancel(waiting)).toBe("cancelled");
    expect((await t.api.status(waiting)).state).toBe("cancelled");

    let sawAbort = false;
    await startWorker({
      handlers: {
        "demo.cooperative": async (_: unknown, ctx) => {
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          sawAbort = true;
          throw ctx.signal.reason;
        },
      },
    });
    const running = await t.api.launch("demo.cooperative", {}, { attempts: 5 });
    await eventually(async () => (await t.api.status(running)).state === "running", "the job to start");
    expect(await t.api.cancel(running, { grace: "5s" })).toBe("running");
    const status = await t.api.wait(running, { timeout: "10s" });
    expect(status).toMatchObject({ state: "cancelled", attempts: 1 });
    expect(sawAbort).toBe(true);
  });

  it("forces a cancel after the grace period when the handler ignores its signal", async () => {
    await startWorker({
      concurrency: 1,
      handlers: {
        "demo.ignore": async () => {
          await sleep(60_000);
        },
        "demo.after": async () => "ran",
      },
    });
    const h = await t.api.launch("demo.ignore", {});
    await eventually(async () => (await t.api.status(h)).state === "running", "the job to start");
    const began = Date.now();
    await t.api.cancel(h, { grace: "300ms" });
    const after = await t.api.launch("demo.after", {});
    expect((await t.api.wait(h, { timeout: "10s" })).state).toBe("cancelled");
    expect(Date.now() - began).toBeGreaterThanOrEqual(250);
    expect((await t.api.wait(after, { timeout: "10s" })).state).toBe("completed");
  });

  it("cancelAll and detachAll act on jobs whose label matches a pattern", async () => {
    const nightly = await Promise.all(
      ["nightly-1", "nightly-2", "daily-1"].map((label) =>
        t.api.launch("demo.idle", {}, { label, delay: "1h" }),
      ),
    );
    expect(await t.api.cancelAll({ label: "nightly-%" })).toBe(2);
    expect((await t.api.status(nightly[0]!)).state).toBe("cancelled");
    expect((await t.api.status(nightly[2]!)).state).toBe("scheduled");
    expect(await t.api.detachAll({ label: "daily-%" })).toBe(1);
    await expect(t.api.status(nightly[2]!)).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it("detach forgets the handle; the job still runs and its result is dropped", async () => {
    const ran: number[] = [];
    const h = await t.api.launch("demo.detached", 5);
    await t.api.detach(h);
    await expect(t.api.status(h)).rejects.toMatchObject({ code: ErrorCode.NotFound });
    await startWorker({ handlers: { "demo.detached": async (n: number) => void ran.push(n) } });
    await eventually(() => ran.length === 1, "the detached job to run");
    const record = await eventually(async () => {
      const r = await t.ferry.store.getJob(h.id);
      return r?.state === "completed" ? r : undefined;
    }, "the detached job to complete");
    expect(record?.result).toBeNull();
  });

  it("retry re-queues a failed job with fresh attempts", async () => {
    let fail = true;
    await startWorker({
      handlers: {
        "demo.retryable": async () => {
          if (fail) throw new Error("first time");
          return "second time";
        },
      },
    });
    const h = await t.api.launch("demo.retryable", {}, { attempts: 1 });
    expect((await t.api.wait(h, { timeout: "10s" })).state).toBe("failed");
    fail = false;
    await t.api.retry(h);
    expect((await t.api.wait(h, { timeout: "10s" })).state).toBe("completed");
    expect(await t.api.result(h)).toMatchObject({ value: "second time", attempts: 1 });
    await expect(t.api.retry(h)).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
  });
});
