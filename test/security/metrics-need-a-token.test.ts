/**
 * `/metrics` tells queue names and job counts: with authentication on it needs a token (any
 * role), from loopback too, unless `server.metrics_public = true`. An anonymous scrape gets 401
 * and not one figure.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon } from "../helpers/daemon-process.js";

/** What only a scrape that was served would show. */
const FIGURES = /ferry_jobs|ferry_rpc_requests_total|ferry_process|secret-queue/;

describe("/metrics", () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  async function daemon(env: NodeJS.ProcessEnv = {}) {
    const started = await startTestDaemon({ env });
    stops.push(started.stop);
    return started;
  }

  const scrape = (url: string, headers: Record<string, string> = {}) => fetch(`${url}/metrics`, { headers });

  it("needs a token on loopback: anonymous and bad tokens get 401 with no figures", async () => {
    const { url, adminToken } = await daemon();
    const admin = adminToken();
    const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1" });
    await createClient(JobService, transport).launch(
      { handler: "ferry.echo", options: { queue: "secret-queue" } },
      bearer(admin),
    );

    for (const headers of [{}, { authorization: "Bearer nope" }, { "x-api-key": "" }]) {
      const refused = await scrape(url, headers);
      const text = await refused.text();
      expect({ status: refused.status, code: refused.headers.get("ferry-error-code") }).toEqual({
        status: 401,
        code: "FERRY_UNAUTHENTICATED",
      });
      expect(text).not.toMatch(FIGURES);
      expect(text).not.toMatch(/\d+\s*$/m);
    }

    const admins = createClient(AdminService, transport);
    const { token: submitter } = await admins.createToken({ user: "sam" }, bearer(admin));
    const { token: viewer } = await admins.createToken({ user: "val", role: "viewer" }, bearer(admin));
    for (const token of [submitter, viewer, admin]) {
      const served = await scrape(url, { authorization: `Bearer ${token}` });
      expect(served.status).toBe(200);
      expect(await served.text()).toMatch(
        /ferry_jobs\{queue="secret-queue",state="(queued|scheduled|running|completed)"\} 1/,
      );
    }
  }, 60_000);

  it("is open to anyone with metrics_public = true, and with authentication off", async () => {
    for (const env of [{ FERRY_SERVER__METRICS_PUBLIC: "true" }, { FERRY_SERVER__AUTH_ENABLED: "false" }]) {
      const { url } = await daemon(env);
      const open = await scrape(url);
      expect(open.status).toBe(200);
      expect(await open.text()).toContain("ferry_rpc_requests_total");
    }
  }, 60_000);
});
