/**
 * One user cannot hold more than `limits.max_watches_per_user` Watch streams and Wait calls open
 * at once: past it a new one answers FERRY_QUOTA_EXCEEDED before it subscribes to anything, other
 * users are not held to that user's count, and a closed one frees its place.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { eventually } from "../helpers/temp.js";

const CAP = 3;

describe("open watches per user", () => {
  let daemon: TestDaemon | undefined;
  let jobs: ReturnType<typeof createClient<typeof JobService>>;
  let wanda: ReturnType<typeof bearer>;
  let admin: ReturnType<typeof bearer>;
  beforeAll(async () => {
    daemon = await startTestDaemon({ env: { FERRY_LIMITS__MAX_WATCHES_PER_USER: String(CAP) } });
    const transport = createGrpcTransport({ baseUrl: daemon.url });
    admin = bearer(daemon.adminToken());
    const { token } = await createClient(AdminService, transport).createToken({ user: "wanda" }, admin);
    wanda = bearer(token);
    jobs = createClient(JobService, transport);
  }, 60_000);
  afterAll(() => daemon?.stop());

  /** A job no worker takes (its queue has none), so watching it never ends by itself. */
  async function parkedJob(as: ReturnType<typeof bearer>) {
    const { handle } = await jobs.launch({ handler: "ferry.echo", options: { queue: "parked" } }, as);
    return handle!;
  }

  /** A Watch stream, open once its first status arrived; `close` ends it from the client. */
  async function openWatch(as: ReturnType<typeof bearer>) {
    const handle = await parkedJob(as);
    const abort = new AbortController();
    const stream = jobs.watch({ handle }, { ...as, signal: abort.signal })[Symbol.asyncIterator]();
    const first = await stream.next();
    const ended = stream.next().catch(() => undefined);
    return { first, close: () => abort.abort(), ended };
  }

  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => "admitted",
      (e: unknown) => {
        const error = ConnectError.from(e);
        return `${Code[error.code]}/${error.metadata.get("ferry-error-code")}`;
      },
    );

  it("refuses the Watch and Wait past the cap, for that user only, until one closes", async () => {
    const open = [];
    for (let i = 0; i < CAP; i++) open.push(await openWatch(wanda));
    expect(open.map((w) => w.first.value?.state)).toEqual(Array(CAP).fill("queued"));

    const extra = await parkedJob(wanda);
    const overWatch = refusal(
      (async () => {
        for await (const _ of jobs.watch({ handle: extra }, wanda)) return;
      })(),
    );
    expect(await overWatch).toBe("ResourceExhausted/FERRY_QUOTA_EXCEEDED");
    expect(await refusal(jobs.wait({ handle: extra, timeout: "30s" }, wanda))).toBe(
      "ResourceExhausted/FERRY_QUOTA_EXCEEDED",
    );

    // Another user is not held to wanda's count.
    const admins = await openWatch(admin);
    expect(admins.first.value?.state).toBe("queued");
    admins.close();

    // A closed watch gives its place back.
    open[0]!.close();
    await open[0]!.ended;
    const again = (await eventually(() => openWatch(wanda).catch(() => null), "a watch admitted again"))!;
    expect(again.first.value?.state).toBe("queued");
    again.close();
    for (const watch of open.slice(1)) watch.close();
  });
});
