/**
 * The remote client's coalesced launches against `ferry daemon` as a child process: concurrent
 * `launch` and `submit` calls leave as one `LaunchEach` (the daemon's own request counter says
 * so), each call keeps its own answer and order, a refused job fails alone, a quota refuses
 * exactly the launches past it, and a batch too large for the daemon goes again one at a time.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type FerryClient, FerryError } from "../../src/client.js";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

/** How many calls of a JobService method the daemon answered, by its Prometheus counter. */
async function answered(daemon: TestDaemon, method: string): Promise<number> {
  const response = await fetch(`${daemon.url}/metrics`, bearer(daemon.adminToken()));
  expect(response.status).toBe(200);
  let total = 0;
  for (const line of (await response.text()).split("\n")) {
    if (line.startsWith("ferry_rpc_requests_total{") && line.includes(`method="${method}"`)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

async function clientFor(daemon: TestDaemon, user: string): Promise<FerryClient> {
  const admin = createClient(AdminService, createGrpcTransport({ baseUrl: daemon.url }));
  const { token } = await admin.createToken({ user }, bearer(daemon.adminToken()));
  return connect({ server: daemon.url, token });
}

const codeOf = (settled: PromiseSettledResult<unknown>): string => {
  if (settled.status === "fulfilled") return "ok";
  expect(settled.reason).toBeInstanceOf(FerryError);
  return (settled.reason as FerryError).code;
};

describe("coalesced launches", () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await startTestDaemon({ env: { FERRY_LIMITS__LAUNCHES_PER_MINUTE: "30" } });
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("sends concurrent calls as one LaunchEach; each keeps its answer, and a refused job fails alone", async () => {
    const sam = await clientFor(daemon, "sam");
    const [eachBefore, launchBefore] = [
      await answered(daemon, "LaunchEach"),
      await answered(daemon, "Launch"),
    ];
    const calls = Array.from({ length: 20 }, (_, i) => {
      if (i === 7) return sam.launch("ferry.echo", { i }, { queue: "not a queue!" });
      if (i === 12) return sam.submit("ferry.echo", { i });
      return sam.launch("ferry.echo", { i });
    });
    const settled = await Promise.allSettled(calls);
    expect(settled.map(codeOf)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i === 7 ? "FERRY_INVALID_ARGUMENT" : "ok")),
    );
    expect(await answered(daemon, "LaunchEach")).toBe(eachBefore + 1);
    expect(await answered(daemon, "Launch")).toBe(launchBefore);

    const submitted = (settled[12] as PromiseFulfilledResult<{ id: string; cookie?: string }>).value;
    expect(submitted.cookie).toBeUndefined();
    expect(submitted.id).toMatch(/^[0-9a-f-]{36}$/);
    // Each handle reaches the job its own call launched.
    const launched = settled
      .map((s, i) => ({ s, i }))
      .filter(({ i }) => i !== 7 && i !== 12)
      .map(({ s, i }) => ({
        i,
        handle: (s as PromiseFulfilledResult<{ id: string; cookie: string }>).value,
      }));
    expect(launched).toHaveLength(18);
    await sam.drain(
      launched.map((l) => l.handle),
      { timeout: "20s" },
    );
    for (const { i, handle } of launched) {
      expect((await sam.result(handle)).value).toEqual({ i });
    }
  }, 60_000);

  it("sends a call made alone as a plain Launch", async () => {
    const sam = await clientFor(daemon, "solo");
    const [eachBefore, launchBefore] = [
      await answered(daemon, "LaunchEach"),
      await answered(daemon, "Launch"),
    ];
    const handle = await sam.launch("ferry.echo", { alone: true });
    expect(handle.cookie).toHaveLength(22);
    expect(await answered(daemon, "Launch")).toBe(launchBefore + 1);
    expect(await answered(daemon, "LaunchEach")).toBe(eachBefore);
  });

  it("refuses exactly the launches past the caller's quota", async () => {
    const quinn = await clientFor(daemon, "quinn");
    const settled = await Promise.allSettled(
      Array.from({ length: 35 }, (_, i) => quinn.launch("ferry.echo", { i }, { queue: "parked" })),
    );
    const codes = settled.map(codeOf);
    expect(codes.filter((c) => c === "ok")).toHaveLength(30);
    expect(codes.filter((c) => c === "FERRY_QUOTA_EXCEEDED")).toHaveLength(5);
    // Admitted in order: the first 30 calls are the ones stored.
    expect(codes.slice(0, 30).every((c) => c === "ok")).toBe(true);
    let stored = 0;
    for await (const _ of quinn.list({ queue: "parked" })) stored += 1;
    expect(stored).toBe(30);
  }, 30_000);
});

describe("a batch larger than the daemon takes", () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await startTestDaemon({ env: { FERRY_LIMITS__MAX_PAYLOAD_BYTES: "65536" } });
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("is sent again one call at a time, so every launch that fits alone is stored", async () => {
    const pat = await clientFor(daemon, "pat");
    const eachBefore = await answered(daemon, "LaunchEach");
    const big = "x".repeat(20_000);
    const handles = await Promise.all(
      Array.from({ length: 10 }, (_, i) => pat.launch("ferry.echo", { i, big }, { queue: "parked" })),
    );
    expect(new Set(handles.map((h) => h.id)).size).toBe(10);
    // The daemon refused the batch for its size, then took each alone.
    expect(await answered(daemon, "LaunchEach")).toBe(eachBefore + 1);
    for (const handle of handles) {
      expect(await pat.status(handle)).toMatchObject({ id: handle.id, state: "queued" });
    }
  }, 30_000);
});
