/**
 * `dependsOn` holding another user's handle answers exactly as an unknown handle (FERRY_NOT_FOUND,
 * the same bytes) and stores nothing: a leaked handle neither links a job to another user's job
 * nor learns how it ended. Launch, Submit and LaunchMany, over Connect JSON and gRPC.
 */
import { randomBytes } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LaunchManyRequestSchema,
  LaunchRequestSchema,
  ListRequestSchema,
} from "../../src/gen/ferry/v1/jobs_pb.js";
import { type Call, comparable, expectAllSame, overConnect, PROTOCOLS } from "./same-answer.js";
import { startTwoUsers, type TwoUsers } from "./two-users.js";

/** A type, not an interface: it is sent as a JSON value. */
type Handle = { readonly id: string; readonly cookie: string };

const LAUNCHES = [
  [
    "Launch",
    LaunchRequestSchema,
    (dependsOn: Handle[]) => ({ handler: "ferry.echo", options: { dependsOn } }),
  ],
  [
    "Submit",
    LaunchRequestSchema,
    (dependsOn: Handle[]) => ({ handler: "ferry.echo", options: { dependsOn } }),
  ],
  [
    "LaunchMany",
    LaunchManyRequestSchema,
    (dependsOn: Handle[]) => ({
      jobs: [{ handler: "ferry.echo" }, { handler: "ferry.echo", options: { dependsOn } }],
    }),
  ],
] as const;

const NO_JOB = { code: "not_found", ferryCode: "FERRY_NOT_FOUND", message: "no such job" } as const;

describe("dependsOn reaches the caller's own jobs only", () => {
  let users: TwoUsers;
  let parent: Handle;

  beforeAll(async () => {
    users = await startTwoUsers();
    const { handle } = await users.alice.jobs.launch({ handler: "ferry.echo", options: { queue: "parked" } });
    parent = { id: handle!.id, cookie: handle!.cookie };
  }, 60_000);
  afterAll(() => users?.daemon.stop());

  /** Every job in the store, as the admin lists it. */
  async function storedJobs(): Promise<string[]> {
    const list: Call = {
      service: "ferry.v1.JobService",
      method: "List",
      schema: ListRequestSchema,
      body: { limit: 1000 },
    };
    const answer = await overConnect(users.daemon.url, users.daemon.adminToken(), list);
    expect(answer.status).toBe(200);
    return (JSON.parse(answer.body.toString()) as { jobs?: { id: string }[] }).jobs?.map((j) => j.id) ?? [];
  }

  describe.each(PROTOCOLS)("over %s", (_protocol, send) => {
    it.each(LAUNCHES.map(([method, schema, body]) => [method, schema, body] as const))(
      "%s answers another user's parent as an unknown one, and stores nothing",
      async (method, schema, body) => {
        const before = await storedJobs();
        const targets: Handle[] = [
          {
            id: `01900000-0000-7000-8000-${randomBytes(6).toString("hex")}`,
            cookie: randomBytes(16).toString("base64url"),
          },
          { id: parent.id, cookie: randomBytes(16).toString("base64url") },
          parent,
        ];
        const answers = [];
        for (const target of targets) {
          const call: Call = { service: "ferry.v1.JobService", method, schema, body: body([target]) };
          answers.push(comparable(await send(users.daemon.url, users.bob.token, call)));
        }
        expectAllSame(answers, NO_JOB);
        expect(await storedJobs()).toEqual(before);
      },
    );
  });

  it("links its owner's launch to it (the same call, alice's own parent)", async () => {
    const { handle } = await users.alice.jobs.launch({
      handler: "ferry.echo",
      options: { dependsOn: [parent] },
    });
    const status = await users.alice.jobs.status({ handle: handle! });
    expect(status.state).toBe("queued");
    await users.alice.jobs.cancel({ handle: parent });
    const waited = await users.alice.jobs.wait({ handle: handle!, timeout: "10s" });
    expect([waited.state, waited.errorInfo?.code]).toEqual(["failed", "FERRY_DEPENDENCY_FAILED"]);
  });

  it("refuses dependsOn on a schedule alike for any handle", async () => {
    const answers = [];
    for (const dependsOn of [[parent], [{ id: parent.id, cookie: randomBytes(16).toString("base64url") }]]) {
      const refused = await users.bob.schedules
        .create({ name: "bob.hourly", handler: "ferry.echo", every: "1h", options: { dependsOn } })
        .catch((error: unknown) => ConnectError.from(error));
      expect(refused).toBeInstanceOf(ConnectError);
      const error = refused as ConnectError;
      answers.push([error.code, error.metadata.get("ferry-error-code"), error.rawMessage]);
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[0]?.slice(1)).toEqual([
      "FERRY_INVALID_ARGUMENT",
      "schedules do not take the dependsOn option",
    ]);
  });
});
