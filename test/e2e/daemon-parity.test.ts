/**
 * The calls that give a remote caller the library's whole job API, against a real daemon with
 * authentication on, over gRPC (HTTP/2): WaitAny, Drain, Run, DetachAll, Outcome answering as
 * the library's outcome does, owners shown to admins, and Ferry's code as a typed error detail.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { ErrorDetailSchema } from "../../src/gen/ferry/v1/errors_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

describe("JobService parity with the library, over gRPC", () => {
  let daemon: TestDaemon;
  let jobs: ReturnType<typeof createClient<typeof JobService>>;
  let admin: ReturnType<typeof bearer>;
  let sam: ReturnType<typeof bearer>;

  beforeAll(async () => {
    daemon = await startTestDaemon();
    const transport = createGrpcTransport({ baseUrl: daemon.url });
    jobs = createClient(JobService, transport);
    admin = bearer(daemon.adminToken());
    const { token } = await createClient(AdminService, transport).createToken({ user: "sam" }, admin);
    sam = bearer(token);
  }, 60_000);

  afterAll(() => daemon?.stop());

  const refusal = async (call: Promise<unknown>) => {
    const error = ConnectError.from(
      await call.then(
        () => new Error("the call succeeded"),
        (e: unknown) => e,
      ),
    );
    return {
      code: error.code,
      header: error.metadata.get("ferry-error-code"),
      detail: error.findDetails(ErrorDetailSchema).map((d) => d.code),
    };
  };

  it("runs, waits for any and drains, and answers the typed detail on errors", async () => {
    const run = await jobs.run(
      { handler: "ferry.echo", payload: { kind: { case: "numberValue", value: 7 } } },
      sam,
    );
    expect([run.state, run.value?.kind.value]).toEqual(["completed", 7]);
    const { handle: parked } = await jobs.launch(
      { handler: "ferry.echo", options: { queue: "parked" } },
      sam,
    );
    const { handle: quick } = await jobs.launch({ handler: "ferry.echo" }, sam);
    const first = await jobs.waitAny({ handles: [parked!, quick!], timeout: "10s" }, sam);
    expect([first.index, first.status?.state]).toEqual([1, "completed"]);
    expect(await refusal(jobs.drain({ handles: [parked!], timeout: "100ms" }, sam))).toEqual({
      code: Code.DeadlineExceeded,
      header: "FERRY_TIMEOUT",
      detail: ["FERRY_TIMEOUT"],
    });
    const unknown = { id: parked!.id, cookie: "A".repeat(22) };
    expect(await refusal(jobs.status({ handle: unknown }, sam))).toEqual({
      code: Code.NotFound,
      header: "FERRY_NOT_FOUND",
      detail: ["FERRY_NOT_FOUND"],
    });
    expect(await jobs.outcome({ handle: unknown }, sam)).toMatchObject({
      state: "not_found",
      error: { code: "FERRY_NOT_FOUND" },
    });
    // The admin reads owners; the submitter does not.
    expect((await jobs.status({ handle: parked }, admin)).owner).toBe("sam");
    expect((await jobs.status({ handle: parked }, sam)).owner).toBeUndefined();
    const rows = (await jobs.list({ queue: "parked" }, admin)).jobs;
    expect(rows.map((row) => row.owner)).toEqual(["sam"]);
    expect((await jobs.detachAll({ all: true }, sam)).count).toBeGreaterThanOrEqual(1);
    expect(await refusal(jobs.status({ handle: parked }, sam))).toMatchObject({ code: Code.NotFound });
  }, 60_000);
});
