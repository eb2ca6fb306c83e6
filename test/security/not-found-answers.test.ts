/**
 * Every not-found answer is the same bytes whatever its reason: an unknown id, a wrong cookie, or
 * another user's job (or schedule). Checked for each call that takes a handle or a schedule id,
 * over Connect JSON and over gRPC, status, headers, trailers and body alike, and on the CLI.
 */
import { randomBytes } from "node:crypto";
import type { DescMessage } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CancelRequestSchema,
  HandleRequestSchema,
  WaitManyRequestSchema,
  WaitRequestSchema,
} from "../../src/gen/ferry/v1/jobs_pb.js";
import { ScheduleIdRequestSchema, UpdateScheduleRequestSchema } from "../../src/gen/ferry/v1/schedules_pb.js";
import { ferryCli } from "../helpers/daemon-process.js";
import { type Call, comparable, expectAllSame, PROTOCOLS } from "./same-answer.js";
import { startTwoUsers, type TwoUsers } from "./two-users.js";

interface Handle {
  readonly id: string;
  readonly cookie: string;
}

/** A call of JobService on a handle: its method, request message and other fields. */
interface OnHandle {
  readonly method: string;
  readonly schema: DescMessage;
  readonly extra?: Record<string, string>;
  readonly streaming?: boolean;
  /** Takes a list of handles (`handles`) rather than one (`handle`). */
  readonly many?: boolean;
}

const JOB_CALLS: readonly OnHandle[] = [
  { method: "Status", schema: HandleRequestSchema },
  { method: "Wait", schema: WaitRequestSchema, extra: { timeout: "1s" } },
  { method: "Result", schema: HandleRequestSchema },
  { method: "Cancel", schema: CancelRequestSchema, extra: { grace: "1s" } },
  { method: "Detach", schema: HandleRequestSchema },
  { method: "Retry", schema: HandleRequestSchema },
  { method: "Watch", schema: HandleRequestSchema, streaming: true },
  { method: "WaitAny", schema: WaitManyRequestSchema, extra: { timeout: "1s" }, many: true },
  { method: "Drain", schema: WaitManyRequestSchema, extra: { timeout: "1s" }, many: true },
];

const jobCall = (on: OnHandle, handle: Handle): Call => ({
  service: "ferry.v1.JobService",
  method: on.method,
  schema: on.schema,
  streaming: on.streaming ?? false,
  body: { ...(on.many ? { handles: [{ ...handle }] } : { handle: { ...handle } }), ...on.extra },
});

const SCHEDULE_CALLS = [
  { method: "Pause", schema: ScheduleIdRequestSchema },
  { method: "Resume", schema: ScheduleIdRequestSchema },
  { method: "Update", schema: UpdateScheduleRequestSchema, extra: { every: "1h" } },
  { method: "Cancel", schema: ScheduleIdRequestSchema },
] as const;

const scheduleCall = (on: (typeof SCHEDULE_CALLS)[number], id: string): Call => ({
  service: "ferry.v1.ScheduleService",
  method: on.method,
  schema: on.schema,
  body: { id, ...("extra" in on ? on.extra : {}) },
});

const NO_JOB = { code: "not_found", ferryCode: "FERRY_NOT_FOUND", message: "no such job" } as const;
const NO_SCHEDULE = { ...NO_JOB, message: "no such schedule" } as const;

const randomCookie = () => randomBytes(16).toString("base64url");
const unknownId = () => `01900000-0000-7000-8000-${randomBytes(6).toString("hex")}`;

describe("not-found answers are byte-identical whatever the reason", () => {
  let users: TwoUsers;
  /** Alice's job (on a queue no worker takes, so it stays as it is) and her schedule. */
  let aliceJob: Handle;
  let aliceSchedule: string;

  beforeAll(async () => {
    users = await startTwoUsers();
    const { handle } = await users.alice.jobs.launch({ handler: "ferry.echo", options: { queue: "parked" } });
    aliceJob = { id: handle!.id, cookie: handle!.cookie };
    aliceSchedule = (
      await users.alice.schedules.create({ name: "alice.nightly", handler: "ferry.echo", every: "1h" })
    ).id;
  }, 60_000);

  afterAll(() => users?.daemon.stop());

  /** Bob's three ways to miss a job: an unknown id, alice's id with a wrong cookie, alice's handle. */
  const jobTargets = (): Handle[] => [
    { id: unknownId(), cookie: randomCookie() },
    { id: aliceJob.id, cookie: randomCookie() },
    aliceJob,
  ];
  /** And a schedule: an unknown id, alice's schedule. */
  const scheduleTargets = (): string[] => [unknownId(), aliceSchedule];

  describe.each(PROTOCOLS)("over %s", (_protocol, send) => {
    it.each(JOB_CALLS.map((on) => [on.method, on] as const))("JobService/%s", async (_name, on) => {
      const answers = [];
      for (const handle of jobTargets()) {
        answers.push(comparable(await send(users.daemon.url, users.bob.token, jobCall(on, handle))));
      }
      expectAllSame(answers, NO_JOB);
    });

    it("JobService/Outcome: the same not_found answer, as the library's outcome gives", async () => {
      const answers = [];
      for (const handle of jobTargets()) {
        const call = jobCall({ method: "Outcome", schema: HandleRequestSchema }, handle);
        answers.push(comparable(await send(users.daemon.url, users.bob.token, call)));
      }
      for (const other of answers.slice(1)) expect(other).toEqual(answers[0]);
      const answer = answers[0]!;
      expect(answer.status).toBe(200);
      const body = Buffer.from(answer.body, "base64");
      // gRPC frames the message after a 5-byte prefix; Connect JSON sends it as it is.
      const text = answer.headers["content-type"]?.startsWith("application/grpc")
        ? body.subarray(5).toString("latin1")
        : body.toString();
      expect(text).toContain("not_found");
      expect(text).toContain("FERRY_NOT_FOUND");
      expect(text).toContain("no such job");
    });

    it.each(SCHEDULE_CALLS.map((on) => [on.method, on] as const))("ScheduleService/%s", async (_name, on) => {
      const answers = [];
      for (const id of scheduleTargets()) {
        answers.push(comparable(await send(users.daemon.url, users.bob.token, scheduleCall(on, id))));
      }
      expectAllSame(answers, NO_SCHEDULE);
    });
  });

  it("on the command line: the same output and exit code 3", async () => {
    const env = { FERRY_SERVER: users.daemon.url, FERRY_TOKEN: users.bob.token };
    const runs = [];
    for (const command of [
      ["status"],
      ["wait", "--timeout", "1s"],
      ["result"],
      ["outcome"],
      ["cancel"],
      ["detach"],
      ["retry"],
    ]) {
      const outputs = await Promise.all(
        jobTargets().map((h) => ferryCli([...command, `${h.id}.${h.cookie}`], env)),
      );
      runs.push(
        ...outputs.map((run) => ({ command, exit: run.code, stdout: run.stdout, stderr: run.stderr })),
      );
      for (const run of runs.slice(-3)) {
        expect(run).toEqual({
          command,
          exit: 3,
          stdout: "",
          stderr: "ferry: FERRY_NOT_FOUND: no such job\n",
        });
      }
    }
    for (const verb of ["pause", "resume", "cancel"]) {
      const outputs = await Promise.all(scheduleTargets().map((id) => ferryCli(["schedule", verb, id], env)));
      for (const run of outputs) {
        expect({ verb, exit: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
          verb,
          exit: 3,
          stdout: "",
          stderr: "ferry: FERRY_NOT_FOUND: no such schedule\n",
        });
      }
    }
  }, 120_000);

  it("left alice's job and schedule as they were", async () => {
    const status = await users.alice.jobs.status({ handle: aliceJob });
    expect([status.state, status.cancelRequested, status.consumed]).toEqual(["queued", false, false]);
    const { schedules } = await users.alice.schedules.list({});
    expect(schedules.map((s) => [s.id, s.paused, s.everyMs])).toEqual([[aliceSchedule, false, 3_600_000n]]);
  });
});
