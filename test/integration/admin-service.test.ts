/**
 * `ferry.v1.AdminService` (src/daemon/admin-service.ts) through Connect's in-memory transport on a
 * real SQLite store with a worker: pausing and resuming queues, the live workers, and who may ask.
 * Without access control (`access: undefined`, authentication off) the queue and worker calls
 * still answer, while the user calls say there are no users. Callers are chosen by an
 * `x-test-user` header standing in for the daemon's token check.
 */
import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { adminService } from "../../src/daemon/admin-service.js";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { as, callerOf } from "../helpers/fake-callers.js";
import { cleanupsAfterEach, failure, inMemoryClient, sqliteFerry } from "../helpers/service-harness.js";
import { eventually, sleep } from "../helpers/temp.js";

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe("AdminService", () => {
  const cleanups = cleanupsAfterEach();

  async function setup() {
    const ferry = await sqliteFerry(cleanups);
    const worker = ferry.worker({
      name: "test-worker",
      queues: ["default", "emails"],
      pollInterval: "50ms",
      handlers: { "demo.echo": async (payload: unknown) => payload },
    });
    await worker.start();
    cleanups.push(() => worker.stop());
    const client = inMemoryClient(AdminService, adminService(ferry, { callerOf, access: undefined }));
    return { ferry, client, as };
  }

  it("pauses a queue so no worker claims from it, and resumes it; admins only", async () => {
    const { ferry, client, as } = await setup();
    expect(await client.pauseQueue({ queue: "emails" }, as("root"))).toMatchObject({
      queue: "emails",
      paused: true,
    });
    const handle = await ferry.launch("demo.echo", 1, { queue: "emails" });
    const other = await ferry.launch("demo.echo", 2);
    await ferry.wait(other, { timeout: "10s" });
    // A worker polling every 50 ms had many chances to claim the paused queue's job.
    await sleep(300);
    expect((await ferry.status(handle)).state).toBe("queued");
    expect(await client.resumeQueue({ queue: "emails" }, as("root"))).toMatchObject({
      queue: "emails",
      paused: false,
    });
    expect((await ferry.wait(handle, { timeout: "10s" })).state).toBe("completed");

    for (const user of ["bob", "vic"]) {
      expect(await failure(client.pauseQueue({ queue: "emails" }, as(user)))).toBe(
        "PermissionDenied/FERRY_PERMISSION_DENIED",
      );
      expect(await failure(client.resumeQueue({ queue: "emails" }, as(user)))).toBe(
        "PermissionDenied/FERRY_PERMISSION_DENIED",
      );
    }
    for (const queue of ["", "../etc", "__proto__ x"]) {
      expect(await failure(client.pauseQueue({ queue }, as("root")))).toBe(
        "InvalidArgument/FERRY_INVALID_ARGUMENT",
      );
    }
    expect(await failure(client.pauseQueue({ queue: "emails" }, as("nobody")))).toBe(
      "Unauthenticated/FERRY_UNAUTHENTICATED",
    );
  });

  it("lists live workers for admins and viewers, with times as RFC 3339", async () => {
    const { client, as } = await setup();
    await eventually(
      async () => (await client.listWorkers({}, as("vic"))).workers.length > 0,
      "the worker's first heartbeat",
    );
    const { workers } = await client.listWorkers({}, as("vic"));
    expect(workers).toHaveLength(1);
    const [worker] = workers;
    expect(worker).toMatchObject({
      name: "test-worker",
      host: hostname(),
      pid: process.pid,
      queues: ["default", "emails"],
      running: 0,
    });
    expect(worker!.startedAt).toMatch(RFC3339);
    expect(worker!.lastHeartbeatAt).toMatch(RFC3339);
    expect(Date.parse(worker!.lastHeartbeatAt)).toBeGreaterThanOrEqual(Date.parse(worker!.startedAt));
    expect((await client.listWorkers({}, as("root"))).workers).toHaveLength(1);
    expect(await failure(client.listWorkers({}, as("bob")))).toBe("PermissionDenied/FERRY_PERMISSION_DENIED");
  });

  it("answers figures to viewers, and says there are no users when authentication is off", async () => {
    const { ferry, client, as } = await setup();
    await ferry.wait(await ferry.launch("demo.echo", 1), { timeout: "10s" });
    expect((await client.stats({}, as("vic"))).launched).toBe(1n);
    expect(await failure(client.stats({}, as("bob")))).toBe("PermissionDenied/FERRY_PERMISSION_DENIED");
    expect(await failure(client.listUsers({}, as("root")))).toBe("InvalidArgument/FERRY_INVALID_ARGUMENT");
    expect(await failure(client.listUsers({}, as("vic")))).toBe("PermissionDenied/FERRY_PERMISSION_DENIED");
  });
});
