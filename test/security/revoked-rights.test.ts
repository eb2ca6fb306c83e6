/**
 * Rights are checked whenever work starts on a user's behalf. A schedule fires only while its
 * owner is a user with a valid token who may launch its handler: revoking the user's `sql.exec`
 * grant, or all of its tokens, pauses its `sql.exec` schedule, with the reason in `schedule list`
 * (RPC and CLI), and nothing fires any more; resuming or changing it needs the right again.
 * `Retry` needs what `Launch` would (the grant, the quota), and `LaunchMany` is refused whole.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL } from "../conformance/stores.js";
import { ferryCli } from "../helpers/daemon-process.js";
import { eventually, sleep } from "../helpers/temp.js";
import {
  type CallOptions,
  type DaemonWithUsers,
  DENIED,
  failure,
  startDaemonWithUsers,
} from "./daemon-with-users.js";

const json = (value: JsonValue) => fromJson(ValueSchema, value);
/** Long enough for a 1 s schedule to have fired twice more, had it not been paused. */
const QUIET_MS = 3_000;

describe("revoked rights stop the work started on a user's behalf", () => {
  let d: DaemonWithUsers;
  beforeAll(async () => {
    // The test database's role is a superuser: allowed here, refused in sql-exec-role.test.ts.
    d = await startDaemonWithUsers({ FERRY_SQL__URL: PG_URL, FERRY_SQL__ALLOW_SUPERUSER: "true" });
  }, 60_000);
  afterAll(() => d?.daemon.stop());

  /** How many jobs the schedule `name` fired so far (as the admin sees them). */
  const fired = async (name: string) =>
    (await d.jobs.list({ label: `schedule:${name}`, limit: 1000 }, d.root)).jobs.length;

  const scheduleOf = async (id: string, as: CallOptions) =>
    (await d.schedules.list({}, as)).schedules.find((s) => s.id === id);

  /** A sql.exec schedule of `as` that fires every second, once it fired at least once. */
  async function firingSqlSchedule(name: string, as: CallOptions) {
    const made = await d.schedules.create(
      { name, handler: "sql.exec", every: "1s", payload: json({ sql: "SELECT 1 AS one" }) },
      as,
    );
    await eventually(async () => (await fired(name)) >= 1, `${name} to fire`, 20_000);
    return made;
  }

  it("pauses a sql.exec schedule whose owner lost the grant, says why, and fires nothing more", async () => {
    const alice = await d.user("alice", { grants: ["sql.exec"] });
    const made = await firingSqlSchedule("alice.report", alice.as);

    await d.admin.revoke({ user: "alice", grant: "sql.exec" }, d.root);
    const reason = "its owner is not granted sql.exec";
    const paused = await eventually(
      async () => ((await scheduleOf(made.id, alice.as))?.paused ? scheduleOf(made.id, alice.as) : undefined),
      "the schedule to be paused",
      20_000,
    );
    expect(paused).toMatchObject({ paused: true, pausedReason: reason });
    const count = await fired("alice.report");
    await sleep(QUIET_MS);
    expect(await fired("alice.report")).toBe(count);

    // `ferry schedule list`, as JSON and as a table, shows the reason to the owner.
    const env = { FERRY_SERVER: d.daemon.url, FERRY_TOKEN: alice.token };
    const listed = await ferryCli(["schedule", "list", "--json"], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ id: made.id, paused: true, pausedReason: reason });
    const table = await ferryCli(["schedule", "list"], env);
    expect(table.stdout).toContain(`yes: ${reason}`);

    // What would make it fire again needs the right: the owner's, even when an admin resumes it.
    expect(await failure(d.schedules.resume({ id: made.id }, alice.as))).toBe(DENIED);
    expect(await failure(d.schedules.update({ id: made.id, every: "2s" }, alice.as))).toBe(DENIED);
    expect(
      await failure(d.schedules.create({ name: "alice.report", handler: "sql.exec", every: "1s" }, alice.as)),
    ).toBe(DENIED);
    expect(await failure(d.schedules.resume({ id: made.id }, d.root))).toBe(DENIED);
    expect(await scheduleOf(made.id, alice.as)).toMatchObject({ paused: true, pausedReason: reason });
    // Stopping it needs no right.
    expect(await failure(d.schedules.pause({ id: made.id }, alice.as))).toBe("ok");

    // Granted again, its owner resumes it, the reason is gone and it fires again.
    await d.admin.grant({ user: "alice", grant: "sql.exec" }, d.root);
    const resumed = await d.schedules.resume({ id: made.id }, alice.as);
    expect(resumed.paused).toBe(false);
    expect(resumed.pausedReason).toBeUndefined();
    await eventually(
      async () => (await fired("alice.report")) > count,
      "the resumed schedule to fire",
      20_000,
    );
  }, 120_000);

  it("pauses the schedule of a user whose tokens were all revoked", async () => {
    const bob = await d.user("bob", { grants: ["sql.exec"] });
    const made = await firingSqlSchedule("bob.report", bob.as);

    await d.admin.revokeToken({ user: "bob" }, d.root);
    const paused = await eventually(
      async () => ((await scheduleOf(made.id, d.root))?.paused ? scheduleOf(made.id, d.root) : undefined),
      "the schedule to be paused",
      20_000,
    );
    expect(paused).toMatchObject({
      paused: true,
      pausedReason: "its owner is no longer a user with a valid token",
    });
    const count = await fired("bob.report");
    await sleep(QUIET_MS);
    expect(await fired("bob.report")).toBe(count);
    // The admin sees the reason in `ferry schedule list` too, and cannot resume it for a gone owner.
    const table = await ferryCli(["schedule", "list"], {
      FERRY_SERVER: d.daemon.url,
      FERRY_TOKEN: d.daemon.adminToken(),
    });
    expect(table.stdout).toContain("yes: its owner is no longer a user with a valid token");
    expect(await failure(d.schedules.resume({ id: made.id }, d.root))).toBe(DENIED);
    expect(await fired("bob.report")).toBe(count);
  }, 120_000);

  it("refuses Retry of a restricted job to a user without the grant, and the job does not run", async () => {
    const carol = await d.user("carol", { grants: ["sql.exec"] });
    const { handle } = await d.jobs.launch(
      { handler: "sql.exec", payload: json({ sql: "SELECT 1 / 0" }), options: { attempts: 1 } },
      carol.as,
    );
    const ended = await d.jobs.wait({ handle, timeout: "20s" }, carol.as);
    expect(ended).toMatchObject({ state: "failed", attempts: 1 });

    await d.admin.revoke({ user: "carol", grant: "sql.exec" }, d.root);
    expect(await failure(d.jobs.retry({ handle }, carol.as))).toBe(DENIED);
    await sleep(1_500);
    // Had it run again, it would have started and finished anew.
    expect(await d.jobs.status({ handle }, carol.as)).toMatchObject({
      state: "failed",
      attempts: 1,
      startedAt: ended.startedAt,
      finishedAt: ended.finishedAt,
    });

    // With the grant back, the same Retry runs it again: the refusal was the grant, nothing else.
    await d.admin.grant({ user: "carol", grant: "sql.exec" }, d.root);
    expect(await failure(d.jobs.retry({ handle }, carol.as))).toBe("ok");
    await eventually(
      async () => {
        const now = await d.jobs.status({ handle }, carol.as);
        return now.state === "failed" && now.finishedAt !== ended.finishedAt;
      },
      "the retried job to run",
      20_000,
    );
  }, 60_000);

  it("refuses a LaunchMany holding a restricted handler whole, storing nothing", async () => {
    const dave = await d.user("dave");
    const refused = d.jobs.launchMany(
      {
        jobs: [
          { handler: "ferry.echo", payload: json({ n: 1 }) },
          { handler: "sql.exec", payload: json({ sql: "SELECT 1" }) },
        ],
      },
      dave.as,
    );
    expect(await failure(refused)).toBe(DENIED);
    expect((await d.jobs.list({}, dave.as)).jobs).toEqual([]);
    const vic = await d.user("vic", { role: "viewer" });
    expect(await failure(d.jobs.launchMany({ jobs: [{ handler: "ferry.echo" }] }, vic.as))).toBe(DENIED);
  });
});

describe("Retry counts against the caller's launch quota, as Launch does", () => {
  let d: DaemonWithUsers;
  beforeAll(async () => {
    d = await startDaemonWithUsers({ FERRY_LIMITS__LAUNCHES_PER_MINUTE: "2" });
  }, 60_000);
  afterAll(() => d?.daemon.stop());

  it("refuses a Retry past launches_per_minute with FERRY_QUOTA_EXCEEDED, and the job stays failed", async () => {
    const erin = await d.user("erin");
    // ferry.sleep without a duration fails at once, and is not retried on its own.
    const launch = () => d.jobs.launch({ handler: "ferry.sleep", payload: json({}) }, erin.as);
    const { handle } = await launch();
    await launch();
    const ended = await d.jobs.wait({ handle, timeout: "20s" }, erin.as);
    expect(ended.state).toBe("failed");
    expect(await failure(d.jobs.retry({ handle }, erin.as))).toBe("ResourceExhausted/FERRY_QUOTA_EXCEEDED");
    await sleep(1_000);
    expect(await d.jobs.status({ handle }, erin.as)).toMatchObject({
      state: "failed",
      finishedAt: ended.finishedAt,
    });
  }, 60_000);
});
