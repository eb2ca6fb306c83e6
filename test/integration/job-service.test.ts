/**
 * `ferry.v1.JobService` (src/daemon/job-service.ts) through Connect's in-memory transport: the
 * real service code, messages and error mapping, on a real SQLite store with a worker, without
 * the network server (test/e2e covers that once the daemon serves it). Callers are chosen by an
 * `x-test-user` header standing in for the daemon's token check.
 */
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { jobService } from "../../src/daemon/job-service.js";
import { OpenWatches } from "../../src/daemon/open-watches.js";
import { ERROR_CODE_HEADER, toConnectError } from "../../src/daemon/rpc-errors.js";
import { ErrorDetailSchema } from "../../src/gen/ferry/v1/errors_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { FerryError } from "../../src/index.js";
import { as, callerOf } from "../helpers/fake-callers.js";
import { cleanupsAfterEach, inMemoryClient, sqliteFerry } from "../helpers/service-harness.js";

describe("JobService", () => {
  const cleanups = cleanupsAfterEach();

  async function setup(options: { worker?: boolean; openWatches?: OpenWatches } = {}) {
    const ferry = await sqliteFerry(cleanups);
    if (options.worker !== false) {
      const worker = ferry.worker({
        pollInterval: "50ms",
        handlers: {
          "demo.echo": async (payload: unknown) => payload,
          "demo.slow": async (_payload: unknown, ctx: { signal: AbortSignal }) =>
            new Promise((resolve, reject) => {
              const timer = setTimeout(() => resolve("slow"), 10_000);
              ctx.signal.addEventListener("abort", () => {
                clearTimeout(timer);
                reject(ctx.signal.reason);
              });
            }),
          "demo.boom": async () => {
            throw new Error("secret internals /etc/passwd");
          },
        },
      });
      await worker.start();
      cleanups.push(() => worker.stop());
    }
    const client = inMemoryClient(
      JobService,
      jobService(ferry, {
        callerOf,
        restrictedHandlers: new Set(["demo.restricted"]),
        cancelGraceMaxMs: 60_000,
        ...(options.openWatches === undefined ? {} : { openWatches: options.openWatches }),
      }),
    );
    return { ferry, client, as };
  }

  /** The RPC error a call ends with: its status and Ferry's code. */
  async function rpcError(call: Promise<unknown>) {
    try {
      await call;
    } catch (error) {
      const e = ConnectError.from(error);
      const detail = e.findDetails(ErrorDetailSchema).map((d) => d.code);
      // The typed detail and the header always agree.
      expect(detail).toEqual([e.metadata.get(ERROR_CODE_HEADER)]);
      return { code: e.code, ferry: e.metadata.get(ERROR_CODE_HEADER), message: e.rawMessage };
    }
    throw new Error("the call succeeded");
  }

  it("launches, waits and hands the result out once, with the payload as any JSON value", async () => {
    const { client, as } = await setup();
    const payload = { to: "a@example.com", n: [1, 2.5, null], ok: true };
    const { handle } = await client.launch({ handler: "demo.echo", payload: toValue(payload) }, as("ann"));
    expect(handle?.id).toMatch(/^[0-9a-f-]{36}$/);
    const done = await client.wait({ handle, timeout: "10s" }, as("ann"));
    expect(done).toMatchObject({ state: "completed", attempts: 1, handler: "demo.echo", queue: "default" });
    const result = await client.result({ handle }, as("ann"));
    expect(result.state).toBe("completed");
    expect(fromValue(result.value)).toEqual(payload);
    expect(await rpcError(client.result({ handle }, as("ann")))).toMatchObject({
      code: Code.NotFound,
      ferry: "FERRY_NOT_FOUND",
    });
  });

  it("answers another user's handle as not found, a wrong cookie too; an admin reaches it", async () => {
    const { client, as } = await setup({ worker: false });
    const { handle } = await client.launch({ handler: "demo.echo" }, as("ann"));
    expect(await rpcError(client.status({ handle }, as("bob")))).toMatchObject({
      code: Code.NotFound,
      ferry: "FERRY_NOT_FOUND",
    });
    expect(await rpcError(client.cancel({ handle }, as("bob")))).toMatchObject({ code: Code.NotFound });
    const forged = { id: handle!.id, cookie: "x".repeat(43) };
    expect(await rpcError(client.status({ handle: forged }, as("ann")))).toMatchObject({
      code: Code.NotFound,
    });
    expect((await client.status({ handle }, as("root"))).state).toBe("queued");
    expect((await client.cancel({ handle }, as("ann"))).state).toBe("cancelled");
  });

  it("lets a viewer list without payloads and nothing else; submitters list their own jobs", async () => {
    const { client, as } = await setup({ worker: false });
    await client.launch({ handler: "demo.echo", payload: toValue({ secret: "ann's" }) }, as("ann"));
    await client.launch({ handler: "demo.echo", payload: toValue({ secret: "bob's" }) }, as("bob"));
    expect(await rpcError(client.launch({ handler: "demo.echo" }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
      ferry: "FERRY_PERMISSION_DENIED",
    });
    const seen = await client.list({}, as("vic"));
    expect(seen.jobs).toHaveLength(2);
    expect(seen.jobs.every((row) => row.preview === undefined)).toBe(true);
    const own = await client.list({}, as("bob"));
    expect(own.jobs.map((row) => row.preview)).toEqual(['{"secret":"bob\'s"}']);
    const { handle } = await client.launch({ handler: "demo.echo" }, as("ann"));
    expect(await rpcError(client.status({ handle }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
    });
    expect(await rpcError(client.list({}, as("nobody")))).toMatchObject({
      code: Code.Unauthenticated,
      ferry: "FERRY_UNAUTHENTICATED",
    });
  });

  it("lets only admins and granted users launch a restricted handler, alone or in a batch", async () => {
    const { client, as, ferry } = await setup({ worker: false });
    const denied = await rpcError(client.launch({ handler: "demo.restricted" }, as("bob")));
    expect(denied).toMatchObject({ code: Code.PermissionDenied, ferry: "FERRY_PERMISSION_DENIED" });
    expect(denied.message).toContain("ferry grant demo.restricted bob");
    expect(
      await rpcError(
        client.launchMany({ jobs: [{ handler: "demo.echo" }, { handler: "demo.restricted" }] }, as("bob")),
      ),
    ).toMatchObject({ code: Code.PermissionDenied });
    expect(await rpcError(client.submit({ handler: "demo.restricted" }, as("bob")))).toMatchObject({
      code: Code.PermissionDenied,
    });
    // Nothing of the refused calls was stored.
    expect((await ferry.stats()).launched).toBe(0);
    await client.launch({ handler: "demo.restricted" }, as("ann"));
    await client.launch({ handler: "demo.restricted" }, as("root"));
    expect((await ferry.stats()).launched).toBe(2);
  });

  it("caps a cancel's grace at the daemon's cancel_grace_max", async () => {
    const { client } = await setup({ worker: false });
    const { handle } = await client.launch({ handler: "demo.echo" }, as("ann"));
    expect(await rpcError(client.cancel({ handle, grace: "2m" }, as("ann")))).toMatchObject({
      code: Code.InvalidArgument,
      ferry: "FERRY_INVALID_ARGUMENT",
    });
    expect(await rpcError(client.cancelAll({ all: true, grace: "61s" }, as("ann")))).toMatchObject({
      code: Code.InvalidArgument,
    });
    expect((await client.cancel({ handle, grace: "60s" }, as("ann"))).state).toBe("cancelled");
  });

  it("pages a list with next_after_id", async () => {
    const { client, as } = await setup({ worker: false });
    const { handles } = await client.launchMany(
      { jobs: Array.from({ length: 5 }, (_, i) => ({ handler: "demo.echo", payload: toValue(i) })) },
      as("ann"),
    );
    const first = await client.list({ limit: 3 }, as("ann"));
    expect(first.jobs.map((j) => j.id)).toEqual(handles.slice(0, 3).map((h) => h.id));
    const second = await client.list({ limit: 3, afterId: first.nextAfterId! }, as("ann"));
    expect(second.jobs.map((j) => j.id)).toEqual(handles.slice(3).map((h) => h.id));
    expect(second.nextAfterId).toBeUndefined();
    expect(await rpcError(client.list({ limit: 5000 }, as("ann")))).toMatchObject({
      code: Code.InvalidArgument,
    });
  });

  it("refuses bad input with a clear code; a failed job answers its error info to its owner", async () => {
    const { client, as } = await setup();
    expect(await rpcError(client.status({}, as("ann")))).toMatchObject({
      code: Code.InvalidArgument,
      ferry: "FERRY_INVALID_ARGUMENT",
    });
    expect(
      await rpcError(client.launch({ handler: "demo.echo", options: { delay: "soon" } }, as("ann"))),
    ).toMatchObject({ code: Code.InvalidArgument });
    expect(await rpcError(client.list({ state: "exploded" }, as("ann")))).toMatchObject({
      code: Code.InvalidArgument,
    });
    const { handle } = await client.launch({ handler: "demo.boom", options: { attempts: 1 } }, as("ann"));
    const failed = await client.wait({ handle, timeout: "10s" }, as("ann"));
    expect(failed.state).toBe("failed");
    expect(failed.errorInfo?.message).toContain("secret internals");
    expect(failed.errorInfo?.attempt).toBe(1);
  });

  it("answers an error from inside that is not Ferry's as a bare internal error", () => {
    const hidden = toConnectError(new Error('duplicate key value violates "jobs_pkey" at /srv/app.ts:12'));
    expect(hidden.code).toBe(Code.Internal);
    expect(hidden.rawMessage).toBe("internal error");
    expect(hidden.metadata.get(ERROR_CODE_HEADER)).toBe("FERRY_INTERNAL");
    const mapped = toConnectError(new FerryError("FERRY_QUOTA_EXCEEDED", "600 launches a minute"));
    expect([mapped.code, mapped.rawMessage]).toEqual([Code.ResourceExhausted, "600 launches a minute"]);
  });

  it("answers an unfinished job's outcome as its state without consuming; a finished one once", async () => {
    const { client, as } = await setup({ worker: false });
    const { handle } = await client.launch({ handler: "demo.echo" }, as("ann"));
    const waiting = await client.outcome({ handle }, as("ann"));
    expect([waiting.id, waiting.state, waiting.value, waiting.error]).toEqual([
      handle!.id,
      "queued",
      undefined,
      undefined,
    ]);
    // Another user's job answers as the library's outcome answers a bad handle: state not_found.
    expect(await client.outcome({ handle }, as("bob"))).toMatchObject({
      id: "",
      state: "not_found",
      error: { code: "FERRY_NOT_FOUND", message: "no such job" },
    });
    expect(await rpcError(client.outcome({ handle }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
    });
    await client.cancel({ handle }, as("ann"));
    const ended = await client.outcome({ handle }, as("ann"));
    expect(ended).toMatchObject({ state: "cancelled", error: { code: "FERRY_CANCELLED" } });
    // Handed out once, as Result: the next one finds nothing.
    expect(await client.outcome({ handle }, as("ann"))).toMatchObject({
      state: "not_found",
      error: { code: "FERRY_NOT_FOUND" },
    });
  });

  it("cancels a submitter's own jobs only with CancelAll; an admin's reaches every job", async () => {
    const { client, as, ferry } = await setup({ worker: false });
    const launch = (user: string, label: string) =>
      client.launch({ handler: "demo.echo", options: { label } }, as(user));
    const annJobs = [await launch("ann", "nightly-1"), await launch("ann", "daily-1")];
    const bobJobs = [await launch("bob", "nightly-2"), await launch("bob", "nightly-3")];
    expect((await client.cancelAll({ all: true }, as("bob"))).count).toBe(2);
    for (const { handle } of annJobs)
      expect((await client.status({ handle }, as("ann"))).state).toBe("queued");
    for (const { handle } of bobJobs)
      expect((await client.status({ handle }, as("bob"))).state).toBe("cancelled");
    expect((await client.cancelAll({ label: "nightly-%" }, as("bob"))).count).toBe(0);
    expect((await client.cancelAll({ label: "nightly-%", grace: "1s" }, as("root"))).count).toBe(1);
    expect((await client.status({ handle: annJobs[1]!.handle }, as("ann"))).state).toBe("queued");
    expect((await client.cancelAll({ all: true }, as("root"))).count).toBe(1);
    expect((await ferry.stats()).byQueue.default?.cancelled).toBe(4);

    expect(await rpcError(client.cancelAll({ all: true }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
      ferry: "FERRY_PERMISSION_DENIED",
    });
    for (const bad of [{}, { label: "x-%", all: true }, { label: "" }, { all: true, grace: "2h" }]) {
      expect(await rpcError(client.cancelAll(bad, as("root")))).toMatchObject({
        code: Code.InvalidArgument,
        ferry: "FERRY_INVALID_ARGUMENT",
      });
    }
  });

  it("purges finished jobs for admins only, by state and age", async () => {
    const { client, as, ferry } = await setup({ worker: false });
    const { handle: kept } = await client.launch({ handler: "demo.echo" }, as("ann"));
    const { handle: gone } = await client.launch({ handler: "demo.echo" }, as("ann"));
    await client.cancel({ handle: gone }, as("ann"));
    for (const user of ["ann", "vic"]) {
      expect(await rpcError(client.purge({ olderThan: "0s" }, as(user)))).toMatchObject({
        code: Code.PermissionDenied,
      });
    }
    expect((await client.purge({ state: "cancelled", olderThan: "1h" }, as("root"))).count).toBe(0);
    expect((await client.purge({ state: "completed", olderThan: "0s" }, as("root"))).count).toBe(0);
    expect((await client.purge({ state: "cancelled", olderThan: "0s" }, as("root"))).count).toBe(1);
    expect(await rpcError(client.status({ handle: gone }, as("ann")))).toMatchObject({
      code: Code.NotFound,
    });
    expect((await client.status({ handle: kept }, as("ann"))).state).toBe("queued");
    for (const bad of [{ olderThan: "" }, { state: "running", olderThan: "1d" }, { olderThan: "soon" }]) {
      expect(await rpcError(client.purge(bad, as("root")))).toMatchObject({
        code: Code.InvalidArgument,
        ferry: "FERRY_INVALID_ARGUMENT",
      });
    }
    expect((await ferry.stats()).byQueue.default?.queued).toBe(1);
  });

  it("streams a job's status at each change until it is finished", async () => {
    const { client, as } = await setup();
    const { handle } = await client.launch({ handler: "demo.echo", payload: toValue("x") }, as("ann"));
    const states: string[] = [];
    for await (const status of client.watch({ handle }, as("ann"))) states.push(status.state);
    expect(states.at(-1)).toBe("completed");
    expect(new Set(states).size).toBe(states.length);
  });

  it("answers WaitAny with the first finished job and Drain with every status, in order", async () => {
    const { client, as } = await setup();
    const { handle: parked } = await client.launch(
      { handler: "demo.echo", options: { queue: "parked" } },
      as("ann"),
    );
    const { handle: quick } = await client.launch({ handler: "demo.echo", payload: toValue(1) }, as("ann"));
    const first = await client.waitAny({ handles: [parked!, quick!], timeout: "10s" }, as("ann"));
    expect([first.index, first.handle?.id, first.status?.state]).toEqual([1, quick!.id, "completed"]);
    expect(
      await rpcError(client.drain({ handles: [quick!, parked!], timeout: "200ms" }, as("ann"))),
    ).toMatchObject({
      code: Code.DeadlineExceeded,
      ferry: "FERRY_TIMEOUT",
    });
    await client.cancel({ handle: parked }, as("ann"));
    const all = await client.drain({ handles: [quick!, parked!], timeout: "10s" }, as("ann"));
    expect(all.statuses.map((s) => [s.id, s.state])).toEqual([
      [quick!.id, "completed"],
      [parked!.id, "cancelled"],
    ]);
    expect((await client.drain({ handles: [] }, as("ann"))).statuses).toEqual([]);
    expect(await rpcError(client.waitAny({ handles: [] }, as("ann")))).toMatchObject({
      ferry: "FERRY_INVALID_ARGUMENT",
    });
    // One handle of another user's spoils the call as an unknown one would, before any wait.
    expect(await rpcError(client.drain({ handles: [quick!], timeout: "10s" }, as("bob")))).toMatchObject({
      code: Code.NotFound,
      ferry: "FERRY_NOT_FOUND",
      message: "no such job",
    });
    expect(await rpcError(client.waitAny({ handles: [quick!] }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("runs a job in one call: its result, FERRY_TIMEOUT and a cancelled job when the wait ends first", async () => {
    const { client, as, ferry } = await setup();
    const done = await client.run({ handler: "demo.echo", payload: toValue({ n: 1 }) }, as("ann"));
    expect([done.state, fromValue(done.value)]).toEqual(["completed", { n: 1 }]);
    expect(await rpcError(client.run({ handler: "demo.slow", wait: "300ms" }, as("ann")))).toMatchObject({
      code: Code.DeadlineExceeded,
      ferry: "FERRY_TIMEOUT",
    });
    // Cancelled with no grace: the worker lets it go at once.
    await vi.waitFor(
      async () => {
        const rows = [];
        for await (const row of ferry.list({ handler: "demo.slow" })) rows.push(row);
        expect(rows.map((row) => row.state)).toEqual(["cancelled"]);
      },
      { timeout: 5_000, interval: 50 },
    );
    // Launch rules: viewers never, restricted handlers need the grant.
    expect(await rpcError(client.run({ handler: "demo.echo" }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
    });
    expect(await rpcError(client.run({ handler: "demo.restricted" }, as("bob")))).toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("holds a watch slot for each long call: one past the user's cap is refused and stores nothing", async () => {
    const { client, as, ferry } = await setup({ openWatches: new OpenWatches(1) });
    const { handle } = await client.launch({ handler: "demo.echo", options: { queue: "parked" } }, as("ann"));
    const holding = new AbortController();
    const open = client.wait({ handle }, { ...as("ann"), signal: holding.signal });
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const call of [
      client.waitAny({ handles: [handle!], timeout: "1s" }, as("ann")),
      client.drain({ handles: [handle!], timeout: "1s" }, as("ann")),
      client.run({ handler: "demo.echo" }, as("ann")),
    ]) {
      expect(await rpcError(call)).toMatchObject({
        code: Code.ResourceExhausted,
        ferry: "FERRY_QUOTA_EXCEEDED",
      });
    }
    expect((await ferry.stats()).byQueue.default).toBeUndefined();
    holding.abort();
    await open.catch(() => undefined);
    expect((await client.run({ handler: "demo.echo", wait: "10s" }, as("ann"))).state).toBe("completed");
  });

  it("detaches by label or all, a submitter's own jobs only", async () => {
    const { client, as } = await setup({ worker: false });
    const launch = (user: string, label: string) =>
      client.launch({ handler: "demo.echo", options: { label } }, as(user));
    const ann = await launch("ann", "nightly-1");
    const bob = [await launch("bob", "nightly-2"), await launch("bob", "daily-2")];
    expect((await client.detachAll({ label: "nightly-%" }, as("bob"))).count).toBe(1);
    expect(await rpcError(client.status({ handle: bob[0]!.handle }, as("bob")))).toMatchObject({
      code: Code.NotFound,
    });
    expect((await client.status({ handle: bob[1]!.handle }, as("bob"))).state).toBe("queued");
    expect((await client.status({ handle: ann.handle }, as("ann"))).state).toBe("queued");
    expect((await client.detachAll({ all: true }, as("root"))).count).toBe(2);
    for (const bad of [{}, { label: "x-%", all: true }, { label: "" }]) {
      expect(await rpcError(client.detachAll(bad, as("root")))).toMatchObject({
        ferry: "FERRY_INVALID_ARGUMENT",
      });
    }
    expect(await rpcError(client.detachAll({ all: true }, as("vic")))).toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("shows each job's owner to admins only, in status and list rows", async () => {
    const { client, as } = await setup({ worker: false });
    const { handle } = await client.launch({ handler: "demo.echo" }, as("ann"));
    expect((await client.status({ handle }, as("root"))).owner).toBe("ann");
    expect((await client.status({ handle }, as("ann"))).owner).toBeUndefined();
    expect((await client.list({}, as("root"))).jobs.map((row) => row.owner)).toEqual(["ann"]);
    expect((await client.list({}, as("ann"))).jobs.map((row) => row.owner)).toEqual([undefined]);
    expect((await client.list({}, as("vic"))).jobs.map((row) => row.owner)).toEqual([undefined]);
  });
});

const toValue = (json: JsonValue): Value => fromJson(ValueSchema, json);
const fromValue = (value: Value | undefined): JsonValue =>
  value === undefined ? null : toJson(ValueSchema, value);
