import { describe, expect, it } from "vitest";
import { DEFAULT_POLICY } from "../../src/core/options.js";
import { decodeJob, encodeJob, type StoredJob } from "../../src/store/nats/job-codec.js";
import { bandOf, natsNames } from "../../src/store/nats/names.js";
import { applyOutcome, claimed, parentFinished } from "../../src/store/nats/transitions.js";

const job = (over: Partial<StoredJob> = {}): StoredJob => ({
  id: "01900000-0000-7000-8000-000000000001",
  handler: "email.send",
  queue: "default",
  state: "queued",
  priority: 0,
  owner: null,
  label: "wélcome ✓",
  group: null,
  uniqueKey: null,
  serializer: "json",
  cookieHash: Buffer.alloc(32, 7).toString("base64"),
  attempts: 0,
  maxAttempts: 3,
  policy: DEFAULT_POLICY,
  progress: null,
  launchedAt: 1_000,
  runAt: 1_000,
  startedAt: null,
  finishedAt: null,
  error: null,
  consumed: false,
  detached: false,
  cancelRequested: false,
  cancelDeadline: null,
  fence: 0,
  workerId: null,
  leaseExpiresAt: null,
  pendingDeps: 0,
  children: [],
  watched: false,
  expiresAt: null,
  dispatches: 0,
  payload: new Uint8Array([1, 2, 3, 0, 255]),
  result: null,
  ...over,
});

describe("NATS job records", () => {
  it("round-trips every field, raw payload and result bytes, and null blobs", () => {
    const full = job({ result: new Uint8Array([9, 8]), error: null, children: ["a", "b"] });
    expect(decodeJob(encodeJob(full))).toEqual(full);
    const empty = job({ payload: null, result: null });
    expect(decodeJob(encodeJob(empty))).toEqual(empty);
    const zeroLength = job({ payload: new Uint8Array(0), result: new Uint8Array(0) });
    expect(decodeJob(encodeJob(zeroLength))).toEqual(zeroLength);
    expect(() => decodeJob(new TextEncoder().encode('{"id":"x"}'))).toThrow(/not a Ferry job record/);
  });

  it("writes the header as an array and still reads records written with an object header (F1)", () => {
    const full = job({ result: new Uint8Array([9, 8]), children: ["a"] });
    const written = encodeJob(full);
    expect(Buffer.from(written.subarray(0, 2)).toString()).toBe("F2");
    const { payload, result, ...header } = full;
    const head = Buffer.from(JSON.stringify({ ...header, payloadBytes: 5, resultBytes: 2 }));
    const f1 = Buffer.concat([Buffer.from("F1"), Buffer.alloc(4), head, payload!, result!]);
    f1.writeUInt32BE(head.byteLength, 2);
    expect(decodeJob(new Uint8Array(f1))).toEqual(full);
    expect(written.byteLength).toBeLessThan(f1.byteLength * 0.7);
  });

  it("claims bump attempt and fence; outcomes need the current fence", () => {
    const running = claimed(job(), "w1", 30_000, 5_000);
    expect(running).toMatchObject({
      state: "running",
      attempts: 1,
      fence: 1,
      workerId: "w1",
      leaseExpiresAt: 35_000,
    });
    expect(
      applyOutcome(running, { kind: "completed", id: running.id, fence: 0, result: null }, 6_000),
    ).toBeUndefined();
    const done = applyOutcome(
      running,
      { kind: "completed", id: running.id, fence: 1, result: new Uint8Array([7]) },
      6_000,
    );
    expect(done?.next).toMatchObject({ state: "completed", finishedAt: 6_000, workerId: null, progress: 1 });
    expect(done?.counts).toEqual({ completed: 1, run_count: 1, run_ms_total: 1_000 });
    expect(done?.finished).toEqual({ succeeded: true });
  });

  it("a release refunds the attempt; a cancel request turns a retry into cancelled", () => {
    const running = claimed(job(), "w1", 30_000, 5_000);
    const released = applyOutcome(running, { kind: "release", id: running.id, fence: 1 }, 6_000);
    expect(released?.next).toMatchObject({ state: "queued", attempts: 0, workerId: null });
    const error = { code: "E", message: "boom", retryable: true, attempt: 1 };
    const retry = { kind: "retry", id: running.id, fence: 1, error, delayMs: 500, timedOut: false } as const;
    expect(applyOutcome(running, retry, 6_000)?.next).toMatchObject({
      state: "scheduled",
      runAt: 6_500,
      attempts: 1,
    });
    const asked = { ...running, cancelRequested: true };
    expect(applyOutcome(asked, retry, 6_000)?.next.state).toBe("cancelled");
  });

  it("children wait for their parents and fail with them", () => {
    const child = job({ pendingDeps: 2 });
    expect(parentFinished(child, "p", true, 1)?.pendingDeps).toBe(1);
    expect(parentFinished(child, "p", false, 1)).toMatchObject({
      state: "failed",
      error: { code: "FERRY_DEPENDENCY_FAILED" },
    });
    expect(parentFinished(job({ state: "running" }), "p", true, 1)).toBeUndefined();
  });

  it("names: three priority bands, dotted handlers after one-token queues, dot-free consumers", () => {
    expect([bandOf(10), bandOf(0), bandOf(-3)]).toEqual(["hi", "mid", "lo"]);
    const names = natsNames("ferry");
    expect(names.workSubject("emails", "hi", "email.send")).toBe("ferry.work.emails.hi.email.send");
    const consumer = names.consumer("emails", "hi", "email.send");
    expect(consumer).toMatch(/^w_[0-9a-f]{24}$/);
    expect(names.consumer("emails", "mid", "email.send")).not.toBe(consumer);
  });
});
