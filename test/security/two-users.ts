/**
 * A daemon with two submitters, alice and bob, each with a token: the tenants of the tests that
 * check what one user can learn of, or do to, the other's jobs.
 */
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { ScheduleService } from "../../src/gen/ferry/v1/schedules_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

export interface User {
  readonly name: string;
  readonly token: string;
  /** JobService and ScheduleService as this user, over Connect JSON. */
  readonly jobs: Client<typeof JobService>;
  readonly schedules: Client<typeof ScheduleService>;
}

export interface TwoUsers {
  readonly daemon: TestDaemon;
  readonly alice: User;
  readonly bob: User;
}

export async function startTwoUsers(env: NodeJS.ProcessEnv = {}): Promise<TwoUsers> {
  const daemon = await startTestDaemon({ env });
  try {
    const transport = createConnectTransport({
      baseUrl: daemon.url,
      httpVersion: "1.1",
      useBinaryFormat: false,
    });
    const admin = createClient(AdminService, transport);
    const user = async (name: string): Promise<User> => {
      const { token } = await admin.createToken({ user: name }, bearer(daemon.adminToken()));
      const as = (service: typeof JobService | typeof ScheduleService) =>
        createClient(
          service,
          createConnectTransport({
            baseUrl: daemon.url,
            httpVersion: "1.1",
            useBinaryFormat: false,
            interceptors: [
              (next) => (request) => {
                request.header.set("authorization", `Bearer ${token}`);
                return next(request);
              },
            ],
          }),
        );
      return {
        name,
        token,
        jobs: as(JobService) as Client<typeof JobService>,
        schedules: as(ScheduleService) as Client<typeof ScheduleService>,
      };
    };
    return { daemon, alice: await user("alice"), bob: await user("bob") };
  } catch (error) {
    daemon.stop();
    throw error;
  }
}
