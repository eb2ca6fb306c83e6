/**
 * The CLI's job commands against the real daemon (a child process on a free port, authentication
 * on): each command's output (`--json` parsed), the SPEC's exit codes (0 ok, 1 job failed,
 * cancelled or timed out, 2 usage, 3 not found or denied, 4 unreachable), and that nothing but
 * the answer is written in a pipe (the progress line is for terminals only). Every CLI call
 * starts a Node process: calls are grouped, and independent ones run side by side.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { ferryCli, listening, runFerry } from "../helpers/daemon-process.js";
import { eventually, tempDir } from "../helpers/temp.js";

const HANDLE = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{22})$/;

/** The lines of JSON a `--json` listing printed. */
const jsonLines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("ferry job commands against the daemon", () => {
  const dir = tempDir();
  let daemon: ChildProcess;
  let url = "";
  let root = "";
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const jobs = () => createClient(JobService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  const admin = () =>
    createClient(AdminService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  /** The CLI as the admin (or `token`'s user), on this daemon. */
  const cli = (args: string[], token = root) => ferryCli(args, { FERRY_SERVER: url, FERRY_TOKEN: token });

  beforeAll(async () => {
    daemon = runFerry(["daemon", "--port", "0", "--no-plugins"], {}, dir.path);
    url = await listening(daemon);
    root = readFileSync(join(dir.path, "ferry-admin.token"), "utf8").trim();
  }, 60_000);

  afterAll(() => {
    if (daemon.exitCode === null) daemon.kill("SIGKILL");
    dir.remove();
  });

  it("launches, follows and collects a job by its ID.COOKIE; runs one in a call", async () => {
    const launched = await cli(["launch", "ferry.echo", '{"x":1}', "--label", "cli-1"]);
    expect([launched.code, launched.stderr]).toEqual([0, ""]);
    const handle = launched.stdout.trim();
    expect(handle).toMatch(HANDLE);
    const id = HANDLE.exec(handle)![1];

    const [status, waited, run, submitted, launchedJson] = await Promise.all([
      cli(["status", handle, "--json"]),
      cli(["wait", handle, "--timeout", "20s", "--json"]),
      cli(["run", "ferry.echo", '{"x":1}']),
      cli(["submit", "ferry.echo", "--json"]),
      cli(["launch", "ferry.echo", "--json"]),
    ]);
    expect(status.code).toBe(0);
    // --json is the library's JobStatus: every field, absent ones null, times as ISO strings.
    expect(JSON.parse(status.stdout)).toMatchObject({
      id,
      handler: "ferry.echo",
      label: "cli-1",
      launchedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
      cancelRequested: false,
    });
    expect(Object.keys(JSON.parse(status.stdout)).sort()).toEqual(
      [
        "id",
        "handler",
        "queue",
        "state",
        "attempts",
        "maxAttempts",
        "progress",
        "label",
        "priority",
        "owner",
        "launchedAt",
        "runAt",
        "startedAt",
        "finishedAt",
        "consumed",
        "cancelRequested",
        "errorInfo",
      ].sort(),
    );
    // In a pipe a long wait writes its answer only: no progress line on stderr.
    expect([waited.code, waited.stderr]).toEqual([0, ""]);
    expect(JSON.parse(waited.stdout)).toMatchObject({
      id,
      state: "completed",
      attempts: 1,
      consumed: false,
      errorInfo: null,
    });
    expect([run.code, run.stdout, run.stderr]).toEqual([0, '{"x":1}\n', ""]);
    expect([submitted.code, JSON.parse(submitted.stdout)]).toEqual([
      0,
      { id: expect.any(String), deduplicated: false },
    ]);
    // The library's LaunchedHandle.
    expect([launchedJson.code, JSON.parse(launchedJson.stdout)]).toEqual([
      0,
      { id: expect.any(String), cookie: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/), deduplicated: false },
    ]);

    const outcome = await cli(["outcome", handle]);
    expect([outcome.code, outcome.stdout]).toEqual([0, '{"x":1}\n']);
    // Handed out once: the next result is not found.
    const again = await cli(["result", handle]);
    expect([again.code, again.stderr]).toEqual([
      3,
      "ferry: FERRY_NOT_FOUND: the result was already collected\n",
    ]);
  }, 120_000);

  it("refuses malformed handles and payloads as usage errors (2); a wrong handle is not found (3)", async () => {
    const [malformed, wrong, proto, twice, bad, noDaemon, badToken] = await Promise.all([
      cli(["status", "no-dot-here"]),
      cli(["status", "01900000-0000-7000-8000-000000000000.AAAAAAAAAAAAAAAAAAAAAA"]),
      cli(["launch", "ferry.echo", '{"__proto__":{"admin":true}}']),
      cli(["launch", "ferry.echo", '{"a":1,"a":2}']),
      cli(["launch", "ferry.echo", "--attempts", "many"]),
      ferryCli(["stats"], { FERRY_SERVER: "http://127.0.0.1:1", FERRY_TOKEN: root }),
      cli(["stats"], "ferry_not_a_token"),
    ]);
    expect([malformed.code, malformed.stderr]).toEqual([
      2,
      "ferry: FERRY_INVALID_ARGUMENT: a handle is ID.COOKIE, as `ferry launch` prints it\n",
    ]);
    expect([wrong.code, wrong.stderr]).toEqual([3, "ferry: FERRY_NOT_FOUND: no such job\n"]);
    expect([proto.code, twice.code, bad.code]).toEqual([2, 2, 2]);
    expect(proto.stderr).toContain("prototype");
    expect(twice.stderr).toContain("appears twice");
    expect([noDaemon.code, badToken.code]).toEqual([4, 3]);
    expect(noDaemon.stderr).toMatch(
      /^ferry: cannot reach the daemon at http:\/\/127\.0\.0\.1:1 \(.+\): is it running\? FERRY_SERVER names it\n$/,
    );
    // The token is named, never printed.
    expect(badToken.stderr).toBe(
      "ferry: FERRY_UNAUTHENTICATED: the token is not valid (FERRY_TOKEN holds the token)\n",
    );
    // Nothing refused was stored.
    expect((await jobs().list({ label: "%" }, bearer(root))).jobs.map((j) => j.label)).toEqual(["cli-1"]);
  }, 120_000);

  it("exits 1 for a job that failed, a wait that timed out, and a run it cancelled on timeout", async () => {
    const launched = await cli(["launch", "ferry.sleep", '{"ms":-1}', "--attempts", "1"]);
    const failed = launched.stdout.trim();
    const { handle: slow } = await jobs().launch(
      { handler: "ferry.sleep", payload: fromJson(ValueSchema, { ms: 30_000 }) },
      bearer(root),
    );
    const slowText = `${slow!.id}.${slow!.cookie}`;
    const [waited, timedOut, run] = await Promise.all([
      cli(["wait", failed, "--timeout", "20s"]),
      cli(["wait", slowText, "--timeout", "1s"]),
      cli(["run", "ferry.sleep", '{"ms":30000}', "--timeout", "1s"]),
    ]);
    expect(waited.code).toBe(1);
    expect(waited.stdout).toMatch(/^state +failed$/m);
    expect(waited.stderr).toMatch(/^ferry: job \S+ failed: FERRY_INVALID_ARGUMENT: ferry\.sleep takes/);
    expect([timedOut.code, timedOut.stdout, timedOut.stderr]).toEqual([
      1,
      "",
      "ferry: FERRY_TIMEOUT: the job did not finish in time\n",
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    const ranId = /job (\S+) did not finish within 1s: cancelled it/.exec(run.stderr)?.[1];
    expect(ranId).toBeDefined();
    await eventually(
      async () =>
        (await jobs().list({ state: "cancelled", handler: "ferry.sleep" }, bearer(root))).jobs.some(
          (job) => job.id === ranId,
        ),
      "the run's job to end cancelled",
      15_000,
    );

    const [result, outcome] = await Promise.all([
      cli(["result", failed, "--json"]),
      cli(["outcome", slowText, "--json"]),
    ]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      state: "failed",
      error: { code: "FERRY_INVALID_ARGUMENT", attempt: 1 },
      attempts: 1,
      finishedAt: expect.stringMatching(/Z$/),
    });
    // An unfinished job's outcome is its state, not an error, and consumes nothing.
    expect([outcome.code, JSON.parse(outcome.stdout)]).toEqual([
      0,
      { id: slow!.id, state: expect.stringMatching(/^(queued|running)$/) },
    ]);
    const cancelled = await cli(["cancel", slowText, "--grace", "0s", "--json"]);
    expect([cancelled.code, JSON.parse(cancelled.stdout)]).toMatchObject([0, { id: slow!.id }]);
    await eventually(
      async () => (await jobs().status({ handle: slow }, bearer(root))).state === "cancelled",
      "the slow job to end cancelled",
      15_000,
    );
  }, 120_000);

  it("lists, cancels by label or all (a submitter's own jobs only) and purges (admins)", async () => {
    const { token: bob } = await admin().createToken({ user: "bob" }, bearer(root));
    // On a queue no worker serves, so they stay queued and a cancel ends them at once.
    const sleeper = (label: string, token: string) =>
      jobs().launch(
        {
          handler: "ferry.sleep",
          payload: fromJson(ValueSchema, { ms: 30_000 }),
          options: { label, queue: "held" },
        },
        bearer(token),
      );
    await sleeper("nightly-1", root);
    await sleeper("nightly-2", root);
    await sleeper("daily-1", root);
    await sleeper("nightly-bob", bob);

    const [listed, table, usage] = await Promise.all([
      cli(["list", "--label", "nightly-%", "--json"]),
      cli(["list", "--label", "nightly-%", "--limit", "2"]),
      cli(["cancel"]),
    ]);
    expect(listed.code).toBe(0);
    const rows = jsonLines(listed.stdout);
    expect(rows.map((row) => row.label)).toEqual(["nightly-1", "nightly-2", "nightly-bob"]);
    expect(rows[0]).toMatchObject({
      handler: "ferry.sleep",
      queue: "held",
      state: "queued",
      consumed: false,
      // The library's JobListRow: absent fields are null.
      startedAt: null,
      progress: null,
      preview: '{"ms":30000}',
    });
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ID +HANDLER +QUEUE +STATE +ATTEMPTS +PROGRESS +LABEL +LAUNCHED +ERROR$/);
    // Aligned: each column starts where its title does.
    expect(lines[1]!.indexOf("ferry.sleep")).toBe(lines[0]!.indexOf("HANDLER"));
    expect(usage.code).toBe(2);

    // bob's sweep reaches his job only; the admin's reaches the rest.
    const bobs = await cli(["cancel", "--all", "--json"], bob);
    expect([bobs.code, JSON.parse(bobs.stdout)]).toEqual([0, { cancelled: 1 }]);
    const byLabel = await cli(["cancel", "--label", "nightly-%", "--json"]);
    expect(JSON.parse(byLabel.stdout)).toEqual({ cancelled: 2 });
    const all = await cli(["cancel", "--all"]);
    expect([all.code, all.stdout]).toEqual([0, "cancelled 1 job(s)\n"]);

    const [denied, purged] = await Promise.all([
      cli(["purge", "--older-than", "0s"], bob),
      cli(["purge", "--state", "cancelled", "--older-than", "0s", "--json"]),
    ]);
    expect(denied.code).toBe(3);
    expect(purged.code).toBe(0);
    // The four above, and the two cancelled before.
    expect(JSON.parse(purged.stdout)).toEqual({ purged: 6 });
    expect((await jobs().list({ state: "cancelled" }, bearer(root))).jobs).toEqual([]);
  }, 120_000);

  it("adds, lists, pauses, resumes and cancels schedules; pauses queues; lists workers and stats", async () => {
    const added = await cli([
      "schedule",
      "add",
      "tick",
      "ferry.echo",
      '{"t":1}',
      "--every",
      "15m",
      "--repeat",
      "3",
      "--json",
    ]);
    expect(added.code).toBe(0);
    const schedule = JSON.parse(added.stdout) as { id: string };
    expect(schedule).toMatchObject({
      name: "tick",
      handler: "ferry.echo",
      cron: null,
      everyMs: 900_000,
      repeatLeft: 3,
      paused: false,
      pausedReason: null,
      nextRunAt: expect.stringMatching(/Z$/),
    });

    const [listed, paused, neither, queuePaused, workers, stats] = await Promise.all([
      cli(["schedule", "list", "--json"]),
      cli(["schedule", "pause", schedule.id, "--json"]),
      cli(["schedule", "add", "never", "ferry.echo"]),
      cli(["queue", "pause", "emails", "--json"]),
      cli(["workers", "--json"]),
      cli(["stats", "--json"]),
    ]);
    expect(jsonLines(listed.stdout)).toEqual([expect.objectContaining({ id: schedule.id, name: "tick" })]);
    expect(JSON.parse(paused.stdout)).toMatchObject({ id: schedule.id, paused: true });
    expect(neither.code).toBe(2);
    expect([queuePaused.code, JSON.parse(queuePaused.stdout)]).toEqual([
      0,
      { queue: "emails", paused: true },
    ]);
    const [worker] = jsonLines(workers.stdout);
    // The library's WorkerInfo: its times are ms since the epoch.
    expect(worker).toMatchObject({ pid: daemon.pid, queues: ["default"], running: expect.any(Number) });
    expect(worker!.lastHeartbeatAt).toBeGreaterThan(Date.now() - 60_000);
    // The library's StoreStats.
    const figures = JSON.parse(stats.stdout) as { launched: number; byQueue: Record<string, unknown> };
    expect(figures.launched).toBeGreaterThan(0);
    expect(Object.keys(figures.byQueue)).toContain("default");

    const [resumed, queueResumed] = await Promise.all([
      cli(["schedule", "resume", schedule.id]),
      cli(["queue", "resume", "emails"]),
    ]);
    expect([resumed.code, resumed.stdout]).toEqual([0, `resumed schedule tick (${schedule.id})\n`]);
    expect([queueResumed.code, queueResumed.stdout]).toEqual([0, "resumed queue emails\n"]);
    const cancelled = await cli(["schedule", "cancel", schedule.id]);
    expect([cancelled.code, cancelled.stdout]).toEqual([0, `cancelled schedule ${schedule.id}\n`]);
    const gone = await cli(["schedule", "pause", schedule.id]);
    expect(gone.code).toBe(3);
  }, 120_000);
});
