/**
 * A `ferry daemon` process with clients for its three services, and users made on demand by its
 * first admin: the set-up of the tests on what a user's rights let it start or see.
 */
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { ScheduleService } from "../../src/gen/ferry/v1/schedules_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

export type CallOptions = ReturnType<typeof bearer>;

export interface DaemonUser {
  readonly name: string;
  readonly token: string;
  /** Call options that make a call as this user. */
  readonly as: CallOptions;
}

export interface DaemonWithUsers {
  readonly daemon: TestDaemon;
  readonly admin: Client<typeof AdminService>;
  readonly jobs: Client<typeof JobService>;
  readonly schedules: Client<typeof ScheduleService>;
  /** The first admin. */
  readonly root: CallOptions;
  /** A new user with a token, `role` (default submitter) and handler grants. */
  user(name: string, options?: { role?: string; grants?: readonly string[] }): Promise<DaemonUser>;
}

export async function startDaemonWithUsers(env: NodeJS.ProcessEnv = {}): Promise<DaemonWithUsers> {
  const daemon = await startTestDaemon({ env });
  const transport = createConnectTransport({ baseUrl: daemon.url, httpVersion: "1.1" });
  const admin = createClient(AdminService, transport);
  const root = bearer(daemon.adminToken());
  return {
    daemon,
    admin,
    jobs: createClient(JobService, transport),
    schedules: createClient(ScheduleService, transport),
    root,
    async user(name, options = {}) {
      const { token } = await admin.createToken(
        { user: name, ...(options.role === undefined ? {} : { role: options.role }) },
        root,
      );
      for (const grant of options.grants ?? []) await admin.grant({ user: name, grant }, root);
      return { name, token, as: bearer(token) };
    },
  };
}

export { failure } from "../helpers/service-harness.js";

export const DENIED = "PermissionDenied/FERRY_PERMISSION_DENIED";
