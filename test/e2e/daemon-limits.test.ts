import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon } from "../helpers/daemon-process.js";
import { eventually } from "../helpers/temp.js";

describe("the daemon's limits", () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  async function daemon(env: NodeJS.ProcessEnv) {
    const daemon = await startTestDaemon({ env });
    stops.push(daemon.stop);
    const { url } = daemon;
    const admin = bearer(daemon.adminToken());
    const connect = createConnectTransport({ baseUrl: url, httpVersion: "1.1" });
    const { token: user } = await createClient(AdminService, connect).createToken({ user: "burst" }, admin);
    return {
      url,
      as: bearer(user),
      admin,
      jobs: createClient(JobService, connect),
      grpc: createClient(JobService, createGrpcTransport({ baseUrl: url })),
    };
  }

  /** How many of the calls succeeded, and the codes of the rest. */
  async function tally(calls: Promise<unknown>[]) {
    const settled = await Promise.allSettled(calls);
    const refused = settled.flatMap((s) => (s.status === "rejected" ? [ConnectError.from(s.reason)] : []));
    return {
      admitted: settled.length - refused.length,
      codes: new Set(refused.map((e) => `${Code[e.code]}/${e.metadata.get("ferry-error-code")}`)),
    };
  }

  it("admits exactly launches_per_minute of a parallel burst, storing nothing for the rest", async () => {
    const { jobs, grpc, as } = await daemon({ FERRY_LIMITS__LAUNCHES_PER_MINUTE: "7" });
    const burst = Array.from({ length: 40 }, (_, i) =>
      (i % 2 === 0 ? jobs : grpc).launch({ handler: "ferry.echo", payload: fromJson(ValueSchema, i) }, as),
    );
    const { admitted, codes } = await tally(burst);
    expect(admitted).toBe(7);
    expect([...codes]).toEqual(["ResourceExhausted/FERRY_QUOTA_EXCEEDED"]);
    expect((await jobs.list({ limit: 100 }, as)).jobs).toHaveLength(7);
    // A batch that does not fit whole is refused whole.
    const batch = await jobs
      .launchMany({ jobs: [{ handler: "ferry.echo" }, { handler: "ferry.echo" }] }, as)
      .catch((e: unknown) => ConnectError.from(e));
    expect(batch).toMatchObject({ code: Code.ResourceExhausted });
    expect((await jobs.list({ limit: 100 }, as)).jobs).toHaveLength(7);
  }, 60_000);

  it("admits exactly max_active_per_user unfinished jobs of a parallel burst", async () => {
    const { jobs, as } = await daemon({
      FERRY_LIMITS__MAX_ACTIVE_PER_USER: "3",
      FERRY_WORKERS__QUEUES: '["other"]',
    });
    // Nothing runs them (the daemon's workers take another queue): they stay unfinished.
    const burst = Array.from({ length: 20 }, () => jobs.launch({ handler: "ferry.echo" }, as));
    const { admitted, codes } = await tally(burst);
    expect(admitted).toBe(3);
    expect([...codes]).toEqual(["ResourceExhausted/FERRY_QUOTA_EXCEEDED"]);
    const stored = (await jobs.list({ limit: 100 }, as)).jobs;
    expect(stored.map((j) => j.state)).toEqual(["queued", "queued", "queued"]);
  }, 60_000);

  it("frees a place when a job finishes", async () => {
    const { jobs, as } = await daemon({ FERRY_LIMITS__MAX_ACTIVE_PER_USER: "2" });
    const sleeping = await jobs.launch(
      { handler: "ferry.sleep", payload: fromJson(ValueSchema, { ms: 30_000 }) },
      as,
    );
    const quick = await jobs.launch({ handler: "ferry.echo" }, as);
    await jobs.wait({ handle: quick.handle, timeout: "10s" }, as);
    // One sleeping, one finished: one place is free, and only one.
    const { admitted } = await tally(
      Array.from({ length: 5 }, () =>
        jobs.launch({ handler: "ferry.sleep", payload: fromJson(ValueSchema, { ms: 30_000 }) }, as),
      ),
    );
    expect(admitted).toBe(1);
    await jobs.cancel({ handle: sleeping.handle }, as);
    await eventually(
      async () => (await jobs.status({ handle: sleeping.handle }, as)).state === "cancelled",
      "cancel",
    );
    expect(await tally([jobs.launch({ handler: "ferry.echo" }, as)])).toEqual({
      admitted: 1,
      codes: new Set(),
    });
  }, 60_000);

  it("runs at most max_running jobs at once, and times out a job that set no timeout", async () => {
    const { jobs, as, admin } = await daemon({
      FERRY_WORKERS__MAX_RUNNING: "2",
      FERRY_WORKERS__DEFAULT_TIMEOUT: "1s",
    });
    const handles = await Promise.all(
      Array.from({ length: 5 }, () =>
        jobs.launch(
          { handler: "ferry.sleep", payload: fromJson(ValueSchema, { ms: 3_000 }), options: { attempts: 1 } },
          as,
        ),
      ),
    );
    let most = 0;
    const deadline = Date.now() + 4_000;
    while (Date.now() < deadline) {
      const running = (await jobs.list({ state: "running", limit: 100 }, admin)).jobs.length;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(most).toBe(2);
    const done = await jobs.wait({ handle: handles[0]!.handle, timeout: "30s" }, as);
    expect(done.state).toBe("failed");
    expect(done.errorInfo?.code).toBe("FERRY_TIMEOUT");
  }, 60_000);
});
