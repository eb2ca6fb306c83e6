/**
 * The bad-token limiter slows guessing without locking anyone out: every local process shares
 * 127.0.0.1, so after a flood of bad tokens from there the admin's good token must still pass, on
 * every protocol and on /metrics, while further bad tokens are refused with FERRY_QUOTA_EXCEEDED.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

const WRONG = `ferry_${"a".repeat(12)}_${"b".repeat(43)}`;

describe("the bad-token limiter", () => {
  let daemon: TestDaemon | undefined;
  let url = "";

  beforeAll(async () => {
    daemon = await startTestDaemon();
    url = daemon.url;
  }, 60_000);

  afterAll(() => daemon?.stop());

  const list = (headers: Record<string, string>) =>
    fetch(`${url}/ferry.v1.JobService/List`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: "{}",
    });
  const answer = async (response: Response) => ({
    status: response.status,
    code: response.headers.get("ferry-error-code"),
  });

  it("never refuses a good token, however many bad ones came from the same address", async () => {
    const admin = daemon!.adminToken();
    const bad: { status: number; code: string | null }[] = [];
    for (let i = 0; i < 15; i++) bad.push(await answer(await list({ authorization: `Bearer ${WRONG}` })));
    // Ten are counted; after them the address's bad tokens are refused outright.
    expect(bad.slice(0, 10)).toEqual(Array(10).fill({ status: 401, code: "FERRY_UNAUTHENTICATED" }));
    expect(bad.slice(10)).toEqual(Array(5).fill({ status: 429, code: "FERRY_QUOTA_EXCEEDED" }));

    // The admin's token passes while the address is blocked: Connect, gRPC, x-api-key, /metrics.
    expect(await answer(await list({ authorization: `Bearer ${admin}` }))).toEqual({
      status: 200,
      code: null,
    });
    expect(await answer(await list({ "x-api-key": admin }))).toEqual({ status: 200, code: null });
    const overGrpc = createClient(JobService, createGrpcTransport({ baseUrl: url }));
    const { handle } = await overGrpc.launch({ handler: "ferry.echo" }, bearer(admin));
    expect((await overGrpc.wait({ handle, timeout: "10s" }, bearer(admin))).state).toBe("completed");
    const admins = createClient(AdminService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const { token: viewer } = await admins.createToken({ user: "val", role: "viewer" }, bearer(admin));
    const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(metrics.status).toBe(200);

    // Bad tokens are still refused, and a call with no token is asked for one (not counted).
    expect(await answer(await list({ authorization: `Bearer ${WRONG}` }))).toEqual({
      status: 429,
      code: "FERRY_QUOTA_EXCEEDED",
    });
    expect(await answer(await list({}))).toEqual({ status: 401, code: "FERRY_UNAUTHENTICATED" });
    const refused = await overGrpc
      .list({}, bearer(WRONG))
      .catch((error: unknown) => ConnectError.from(error));
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.ResourceExhausted);
  }, 60_000);
});
