/**
 * `sql.exec` through the daemon, with `[sql] url` set: parameterised SQL on the machine's
 * PostgreSQL in its own transaction, for an admin or a user granted it; an error answers its
 * SQLSTATE; a submitter without the grant is refused and nothing runs.
 */
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { PG_URL } from "../conformance/stores.js";
import { bearer, startTestDaemon } from "../helpers/daemon-process.js";

describe("sql.exec in the daemon", () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  it("runs parameterised SQL for an admin and a granted user, and for nobody else", async () => {
    // The test database's role is a superuser; refusing one is test/security/sql-exec-role.test.ts.
    const daemon = await startTestDaemon({
      env: { FERRY_SQL__URL: PG_URL, FERRY_SQL__ALLOW_SUPERUSER: "true" },
    });
    stops.push(daemon.stop);
    const { url } = daemon;
    const root = bearer(daemon.adminToken());
    const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1" });
    const jobs = createClient(JobService, transport);
    const admin = createClient(AdminService, transport);
    const run = async (as: typeof root, payload: Record<string, unknown>) => {
      const { handle } = await jobs.launch(
        { handler: "sql.exec", payload: fromJson(ValueSchema, payload as never), options: { attempts: 1 } },
        as,
      );
      await jobs.wait({ handle, timeout: "20s" }, as);
      return jobs.result({ handle }, as);
    };

    const sum = await run(root, { sql: "SELECT $1::int + 1 AS n", params: [41] });
    expect(sum.state).toBe("completed");
    expect(toJson(ValueSchema, sum.value!)).toMatchObject({
      command: "SELECT",
      rowCount: 1,
      rows: [{ n: 42 }],
    });

    const broken = await run(root, { sql: "SELECT * FROM no_such_table_here" });
    expect(broken.state).toBe("failed");
    expect(broken.error?.fields).toMatchObject({ sqlstate: "42P01" });

    const { token } = await admin.createToken({ user: "sam" }, root);
    const sam = bearer(token);
    const refused = await jobs
      .launch({ handler: "sql.exec", payload: fromJson(ValueSchema, { sql: "SELECT 1" }) }, sam)
      .catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.PermissionDenied });
    await admin.grant({ grant: "sql.exec", user: "sam" }, root);
    expect((await run(sam, { sql: "SELECT 'ok' AS answer" })).state).toBe("completed");
  }, 60_000);
});
