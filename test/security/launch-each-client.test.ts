/**
 * The remote client's coalesced launches against what could make one caller's launch fail or
 * mislead another's: a payload the daemon's JSON rules refuse for the whole request (a
 * `constructor` key, over Connect JSON), and a hostile or broken daemon answering too few or too
 * many results, an empty result, or a handle with no id. Each caller gets its own answer or a
 * FerryError, never another caller's, and a bad answer is never called "unreachable" (the daemon
 * got the call, so trying again could launch twice).
 */
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../../src/client/connection.js";
import { LaunchBatcher } from "../../src/client/launch-batcher.js";
import { prepareRemoteLaunch } from "../../src/client/to-proto.js";
import { connect, FerryError } from "../../src/client.js";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { LaunchEachResultSchema } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

const outcome = (settled: PromiseSettledResult<{ id: string }>) => {
  if (settled.status === "fulfilled") return `ok ${settled.value.id}`;
  expect(settled.reason).toBeInstanceOf(FerryError);
  const error = settled.reason as FerryError;
  expect(error.details?.unreachable).not.toBe(true);
  return error.code;
};

describe("one caller's payload against a daemon's JSON rules", () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await startTestDaemon();
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("fails that caller's launch alone, not every launch sent with it", async () => {
    const admin = createClient(AdminService, createGrpcTransport({ baseUrl: daemon.url }));
    const { token } = await admin.createToken({ user: "web" }, bearer(daemon.adminToken()));
    const client = await connect({ server: daemon.url, token, transport: "connect-json" });
    // A web backend launching for its users: one of them sends data with a `constructor` key.
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        client.launch("ferry.echo", i === 2 ? { car: { constructor: "Ford" } } : { i }, { queue: "parked" }),
      ),
    );
    const codes = settled.map((s) => outcome(s).split(" ")[0]);
    expect(codes).toEqual(["ok", "ok", "FERRY_INVALID_ARGUMENT", "ok", "ok"]);
    for (const [i, s] of settled.entries()) {
      if (s.status === "fulfilled") expect((await client.status(s.value)).id).toBe(s.value.id);
      else expect(i).toBe(2);
    }
  }, 30_000);
});

describe("a daemon answering LaunchEach wrongly", () => {
  const job = (i: number) => prepareRemoteLaunch("ferry.echo", { i }, undefined);
  const launched = (id: string) =>
    create(LaunchEachResultSchema, { result: { case: "launched", value: { handle: { id, cookie: "c" } } } });

  /** A batcher whose daemon answers every LaunchEach with `results`. */
  function batcherAnswering(results: ReturnType<typeof launched>[]) {
    const connection = {
      jobs: {
        launchEach: async () => ({ results }),
        launch: async () => {
          throw new Error("no Launch expected");
        },
      },
    } as unknown as Connection;
    return new LaunchBatcher(connection);
  }

  async function send(results: ReturnType<typeof launched>[], n: number) {
    const batcher = batcherAnswering(results);
    return (await Promise.allSettled(Array.from({ length: n }, (_, i) => batcher.add(job(i), false)))).map(
      outcome,
    );
  }

  it("gives every caller a FerryError when the count of results is not the count of calls", async () => {
    const bad = ["FERRY_STORE_UNAVAILABLE", "FERRY_STORE_UNAVAILABLE", "FERRY_STORE_UNAVAILABLE"];
    expect(await send([launched("a"), launched("b")], 3)).toEqual(bad);
    expect(await send([launched("a"), launched("b"), launched("c"), launched("d")], 3)).toEqual(bad);
  });

  it("refuses an empty result or a handle with no id to that caller alone", async () => {
    const empty = create(LaunchEachResultSchema, {});
    const noId = create(LaunchEachResultSchema, { result: { case: "launched", value: {} } });
    expect(await send([launched("a"), empty, noId], 3)).toEqual([
      "ok a",
      "FERRY_STORE_UNAVAILABLE",
      "FERRY_STORE_UNAVAILABLE",
    ]);
  });
});
