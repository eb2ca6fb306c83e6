/**
 * `ferry/client` against `ferry daemon` as a child process: every method of the library's caller
 * side, over gRPC and over Connect JSON, its error codes, a zod refusal that sends nothing, and a
 * daemon restart on the same store and port that a later call and a watch in progress live through.
 */
import { once } from "node:events";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { connect, defineJob, type FerryClient, FerryError, type WatchEvent } from "../../src/client.js";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { bearer, listening, runFerry, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

const echo = defineJob({
  name: "ferry.echo",
  schema: z.object({ to: z.string().email() }),
  handler: async (payload: { to: string }) => payload,
});

/** The FerryError code a call ends with. */
async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    return (error as FerryError).code;
  }
  throw new Error("the call succeeded");
}

const collect = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
};

async function submitterToken(url: string, adminToken: string, user: string): Promise<string> {
  const admin = createClient(AdminService, createGrpcTransport({ baseUrl: url }));
  return (await admin.createToken({ user }, bearer(adminToken))).token;
}

describe.each(["grpc", "connect-json"] as const)("the remote client over %s", (transport) => {
  let daemon: TestDaemon;
  let admin: FerryClient;
  let sam: FerryClient;

  beforeAll(async () => {
    daemon = await startTestDaemon();
    admin = await connect({ server: daemon.url, token: daemon.adminToken(), transport });
    const token = await submitterToken(daemon.url, daemon.adminToken(), "sam");
    sam = await connect({ server: daemon.url, token, transport });
  }, 60_000);

  afterAll(() => daemon?.stop());

  it("launches typed jobs, waits, collects once, and runs in one call", async () => {
    const h = await sam.launch(echo, { to: "a@example.com" });
    expect([typeof h.id, h.cookie.length, h.deduplicated]).toEqual(["string", 22, false]);
    expect((await sam.wait(h, { timeout: "10s" })).state).toBe("completed");
    const status = await sam.status(h);
    expect([status.state, status.handler, status.launchedAt instanceof Date, status.owner]).toEqual([
      "completed",
      "ferry.echo",
      true,
      null,
    ]);
    expect((await admin.status(h)).owner).toBe("sam");
    const result = await sam.result<{ to: string }>(h);
    expect([result.state, result.value]).toEqual(["completed", { to: "a@example.com" }]);
    expect(await codeOf(sam.result(h))).toBe("FERRY_NOT_FOUND");
    expect(await sam.outcome(h)).toMatchObject({ state: "not_found", error: { code: "FERRY_NOT_FOUND" } });

    const ran = await sam.run("ferry.echo", { x: 1 }, { timeout: "10s" });
    expect([ran.state, ran.value]).toEqual(["completed", { x: 1 }]);
    expect(await codeOf(sam.run("ferry.sleep", { ms: 5_000 }, { wait: "300ms" }))).toBe("FERRY_TIMEOUT");

    const submitted = await sam.submit("ferry.echo", { y: 2 });
    expect([typeof submitted.id, submitted.deduplicated]).toEqual(["string", false]);
    const first = await sam.launch("ferry.echo", {}, { uniqueKey: `u-${transport}`, queue: "parked" });
    const again = await sam.launch("ferry.echo", {}, { uniqueKey: `u-${transport}`, queue: "parked" });
    expect([again.id, again.cookie, again.deduplicated]).toEqual([first.id, "", true]);
    await sam.cancel(first);

    const many = await sam.launchMany([
      { handler: "ferry.echo", payload: { n: 1 } },
      { handler: echo, payload: { to: "b@example.com" } },
    ]);
    const statuses = await sam.drain(many, { timeout: "10s" });
    expect(statuses.map((s) => [s.id, s.state])).toEqual(many.map((m) => [m.id, "completed"]));
    expect(await sam.drain([])).toEqual([]);
  }, 60_000);

  it("waits for any, cancels, detaches, retries, watches and answers outcomes as the library", async () => {
    const parked = await sam.launch("ferry.echo", {}, { queue: "parked", label: `p-${transport}` });
    const quick = await sam.launch("ferry.echo", { q: 1 });
    const first = await sam.waitAny([parked, quick], { timeout: "10s" });
    expect([first.index, first.handle, first.status.state]).toEqual([1, quick, "completed"]);
    expect(await sam.outcome(parked)).toEqual({ id: parked.id, state: "queued" });
    expect(await codeOf(sam.wait(parked, { timeout: "100ms" }))).toBe("FERRY_TIMEOUT");

    const events: WatchEvent[] = [];
    const watching = (async () => {
      for await (const event of sam.watch(parked)) events.push(event);
    })();
    // Cancelled once the watch has seen it queued, so both states are there to see.
    while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await sam.cancel(parked, { grace: "1s" })).toBe("cancelled");
    await watching;
    expect(events.map((e) => e.state)).toEqual(["queued", "cancelled"]);
    const outcome = await sam.outcome(parked);
    expect(outcome).toMatchObject({ state: "cancelled", error: { code: "FERRY_CANCELLED" } });

    const again = await sam.launch("ferry.echo", {}, { queue: "parked" });
    await sam.cancel(again);
    await sam.retry(again);
    expect((await sam.status(again)).state).toBe("queued");
    await sam.detach(again);
    expect(await codeOf(sam.status(again))).toBe("FERRY_NOT_FOUND");

    const swept = [
      await sam.launch("ferry.echo", {}, { queue: "parked", label: `night-${transport}-1` }),
      await sam.launch("ferry.echo", {}, { queue: "parked", label: `night-${transport}-2` }),
      await sam.launch("ferry.echo", {}, { queue: "parked", label: `day-${transport}` }),
    ];
    expect(await sam.cancelAll({ label: `night-${transport}-%` })).toBe(2);
    expect((await sam.status(swept[2]!)).state).toBe("queued");
    expect(await sam.detachAll({ label: `day-${transport}` })).toBe(1);
    expect(await codeOf(sam.status(swept[2]!))).toBe("FERRY_NOT_FOUND");
  }, 60_000);

  it("lists a page at a time with afterId, purges, and reads stats and workers", async () => {
    const launched = await sam.launchMany(
      Array.from({ length: 5 }, (_, i) => ({
        handler: "ferry.echo",
        payload: { i },
        options: { queue: `list-${transport}` },
      })),
    );
    const rows = await collect(sam.list({ queue: `list-${transport}` }));
    expect(rows.map((r) => r.id)).toEqual(launched.map((h) => h.id));
    expect(rows[0]).toMatchObject({ preview: '{"i":0}', owner: null, state: "queued" });
    const adminRows = await collect(admin.list({ queue: `list-${transport}`, limit: 2 }));
    expect(adminRows.map((r) => [r.id, r.owner])).toEqual(launched.slice(0, 2).map((h) => [h.id, "sam"]));
    const after = await collect(sam.list({ queue: `list-${transport}`, afterId: launched[2]!.id }));
    expect(after.map((r) => r.id)).toEqual(launched.slice(3).map((h) => h.id));

    // No filter: every unfinished job of the caller's (the five above among them).
    expect(await sam.cancelAll()).toBeGreaterThanOrEqual(5);
    expect((await collect(sam.list({ queue: `list-${transport}`, state: "cancelled" }))).length).toBe(5);
    expect(await codeOf(sam.purge({ olderThan: "0s" }))).toBe("FERRY_PERMISSION_DENIED");
    expect(await admin.purge({ state: "cancelled", olderThan: "0s" })).toBeGreaterThan(0);

    const stats = await admin.stats();
    expect(stats.launched).toBeGreaterThan(5);
    expect(stats.byQueue.default?.completed).toBeGreaterThan(0);
    const workers = await collect(admin.workers());
    expect(workers.length).toBeGreaterThan(0);
    expect(workers[0]!.queues).toContain("default");
    expect(workers[0]!.lastHeartbeatAt).toBeGreaterThan(Date.now() - 60_000);
  }, 60_000);

  it("pauses and resumes a queue, and keeps schedules", async () => {
    await admin.pauseQueue(`q-${transport}`);
    const held = await sam.launch("ferry.echo", {}, { queue: `q-${transport}` });
    await admin.resumeQueue(`q-${transport}`);
    expect((await sam.status(held)).state).toBe("queued");
    expect(await codeOf(sam.pauseQueue("default"))).toBe("FERRY_PERMISSION_DENIED");

    const made = await sam.schedule(
      `nightly-${transport}`,
      { every: "1h" },
      { n: 1 },
      { handler: "ferry.echo" },
    );
    expect([made.handler, made.everyMs, made.paused]).toEqual(["ferry.echo", 3_600_000, false]);
    expect((await sam.schedules.list()).map((s) => s.id)).toContain(made.id);
    expect((await sam.schedules.pause(made.id)).paused).toBe(true);
    expect((await sam.schedules.resume(made.id)).paused).toBe(false);
    const changed = await sam.schedules.update(made.id, { every: "2h", repeat: 3 });
    expect([changed.everyMs, changed.repeatLeft]).toEqual([7_200_000, 3]);
    expect((await sam.schedules.get(made.id)).id).toBe(made.id);
    await sam.schedules.cancel(made.id);
    expect(await codeOf(sam.schedules.pause(made.id))).toBe("FERRY_NOT_FOUND");
  }, 60_000);

  it("answers FerryError codes: unknown handle, bad token, and a zod refusal that sends nothing", async () => {
    const unknown = { id: "01900000-0000-7000-8000-000000000000", cookie: "A".repeat(22) };
    expect(await codeOf(sam.status(unknown))).toBe("FERRY_NOT_FOUND");
    expect(await codeOf(sam.cancel(unknown))).toBe("FERRY_NOT_FOUND");
    const stranger = await connect({ server: daemon.url, token: "not-a-token", transport });
    // The daemon answers a bad token from the headers and reads no body: the answer still
    // arrives, whatever the payload's size (under the bad-token limit of the address).
    for (const size of [0, 1_000, 20_000, 60_000, 200_000]) {
      expect([size, await codeOf(stranger.launch("ferry.echo", { pad: "x".repeat(size) }))]).toEqual([
        size,
        "FERRY_UNAUTHENTICATED",
      ]);
    }
    expect(await codeOf(stranger.status(unknown))).toBe("FERRY_UNAUTHENTICATED");

    const before = (await admin.stats()).launched;
    const refused = sam.launch(echo, { to: "not an address" });
    expect(await codeOf(refused)).toBe("FERRY_INVALID_ARGUMENT");
    expect(await codeOf(sam.run(echo, { to: 42 } as unknown as { to: string }))).toBe(
      "FERRY_INVALID_ARGUMENT",
    );
    expect((await admin.stats()).launched).toBe(before);
    expect(await codeOf(sam.launch("sql.exec", { sql: "select 1" }))).toBe("FERRY_PERMISSION_DENIED");
  }, 60_000);
});

describe("the remote client across a daemon restart", () => {
  let first: TestDaemon;
  let second: ReturnType<typeof runFerry> | undefined;

  afterAll(() => {
    if (second !== undefined && second.exitCode === null) second.kill("SIGKILL");
    first?.stop();
  });

  it("makes a new call and resumes a watch and a wait on the same store and port", async () => {
    first = await startTestDaemon();
    const token = first.adminToken();
    const ferry = await connect({ server: first.url, token });
    const parked = await ferry.launch("ferry.echo", {}, { queue: "parked" });

    const events: WatchEvent[] = [];
    const watching = (async () => {
      for await (const event of ferry.watch(parked)) events.push(event);
    })();
    const waiting = ferry.wait(parked, { timeout: "60s" }).catch((error: unknown) => error);
    while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));

    const stopped = once(first.child, "exit");
    first.child.kill("SIGTERM");
    await stopped;
    const port = new URL(first.url).port;
    second = runFerry(["daemon", "--port", port, "--no-plugins"], {}, first.dir);
    await listening(second);

    // A new call on the same client, then a change the watch and the wait must see.
    expect((await ferry.status(parked)).state).toBe("queued");
    expect(await ferry.cancel(parked)).toBe("cancelled");
    await watching;
    expect(events.map((e) => e.state)).toEqual(["queued", "cancelled"]);
    expect(await waiting).toMatchObject({ id: parked.id, state: "cancelled" });
  }, 90_000);
});
