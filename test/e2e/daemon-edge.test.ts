/**
 * The daemon's edge, as a child process: TLS (1.2+, HTTP/2 and HTTP/1.1 on one port by ALPN),
 * CORS for exact origins only, and `/metrics`, for admins and viewers only, from loopback too.
 */
import { networkInterfaces } from "node:os";
import tls from "node:tls";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { startTestDaemon } from "../helpers/daemon-process.js";
import { selfSigned } from "../helpers/self-signed.js";
import { tempDir } from "../helpers/temp.js";

/** This machine's first non-loopback IPv4 address: a peer that is not loopback. */
function outsideAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && !i.internal && i.family === "IPv4");
  if (found === undefined) throw new Error("this test needs a non-loopback IPv4 interface");
  return found.address;
}

describe("the daemon's edge: TLS, CORS, /metrics", () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  async function daemon(env: NodeJS.ProcessEnv, args: string[] = []) {
    const started = await startTestDaemon({ env, args: ["--no-plugins", ...args] });
    stops.push(started.stop);
    return { url: started.url, admin: started.adminToken };
  }

  it("speaks TLS 1.2+ only, gRPC and Connect on one port, and lets TLS open a non-loopback bind", async () => {
    const certs = tempDir();
    stops.push(certs.remove);
    const { cert, key, pem } = selfSigned(certs.path);
    const { url, admin } = await daemon({ FERRY_SERVER__TLS_CERT: cert, FERRY_SERVER__TLS_KEY: key }, [
      "--bind",
      "0.0.0.0",
    ]);
    expect(url).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    const base = url.replace("0.0.0.0", "127.0.0.1");
    const port = Number(new URL(base).port);
    const auth = { headers: { authorization: `Bearer ${admin()}` } };
    for (const transport of [
      createConnectTransport({ baseUrl: base, httpVersion: "1.1", nodeOptions: { ca: pem } }),
      createGrpcTransport({ baseUrl: base, nodeOptions: { ca: pem } }),
    ]) {
      const client = createClient(JobService, transport);
      const { handle } = await client.launch({ handler: "ferry.echo" }, auth);
      expect((await client.wait({ handle, timeout: "10s" }, auth)).state).toBe("completed");
    }
    // Old protocol versions are refused in the handshake.
    const old = await new Promise<string>((resolve) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        ca: pem,
        maxVersion: "TLSv1.1",
        minVersion: "TLSv1",
      });
      socket.on("secureConnect", () => resolve(`connected with ${socket.getProtocol()}`));
      socket.on("error", (error) => resolve(`refused: ${error.message}`));
    });
    expect(old).toMatch(/^refused/);
    // Cleartext on the TLS port gets nowhere.
    const clear = await fetch(`http://127.0.0.1:${port}/healthz`).catch((error: unknown) => error);
    expect(clear).toBeInstanceOf(Error);
  }, 60_000);

  it("answers CORS for exact allowed origins only, always with Vary: Origin", async () => {
    const { url } = await daemon({
      FERRY_SERVER__AUTH_ENABLED: "false",
      FERRY_SERVER__ALLOWED_ORIGINS: '["https://app.example.com"]',
    });
    const preflight = (origin: string) =>
      fetch(`${url}/ferry.v1.JobService/Launch`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,authorization",
        },
      });
    const allowed = await preflight("https://app.example.com");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(allowed.headers.get("vary")).toBe("Origin");
    for (const origin of ["https://evil.example.com", "https://app.example.com.evil.net", "null"]) {
      const refused = await preflight(origin);
      expect(refused.status).toBe(403);
      expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    }
    const call = (origin: string) =>
      fetch(`${url}/ferry.v1.JobService/List`, {
        method: "POST",
        headers: { origin, "content-type": "application/json" },
        body: "{}",
      });
    const fromApp = await call("https://app.example.com");
    expect(fromApp.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(fromApp.headers.get("access-control-expose-headers")).toContain("ferry-error-code");
    const fromElsewhere = await call("https://evil.example.com");
    expect(fromElsewhere.headers.get("access-control-allow-origin")).toBeNull();
    expect(fromElsewhere.headers.get("vary")).toBe("Origin");
  }, 60_000);

  it("serves /metrics to any valid token, on loopback as from elsewhere", async () => {
    const { url, admin } = await daemon({}, ["--bind", "0.0.0.0", "--insecure-no-tls"]);
    const local = url.replace("0.0.0.0", "127.0.0.1");
    const root = admin();
    const auth = { headers: { authorization: `Bearer ${root}` } };
    const jobs = createClient(JobService, createConnectTransport({ baseUrl: local, httpVersion: "1.1" }));
    await jobs.launch({ handler: "ferry.echo", options: { queue: "metered" } }, auth);
    const anonymous = await jobs.list({}).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error).code,
    );
    expect(anonymous).toBe(Code.Unauthenticated);

    expect((await fetch(`${local}/metrics`)).status).toBe(401);
    const text = await (await fetch(`${local}/metrics`, auth)).text();
    expect(text).toMatch(
      /ferry_rpc_requests_total\{service="ferry\.v1\.JobService",method="Launch",code="ok"\} 1/,
    );
    expect(text).toMatch(/ferry_rpc_requests_total\{[^}]*method="List",code="Unauthenticated"\} 1/);
    expect(text).toMatch(/ferry_jobs\{queue="metered",state="(queued|scheduled)"\} 1/);
    expect(text).toContain("ferry_process_resident_memory_bytes");

    const outside = url.replace("0.0.0.0", outsideAddress());
    expect((await fetch(`${outside}/metrics`)).status).toBe(401);
    const admins = createClient(AdminService, createConnectTransport({ baseUrl: local, httpVersion: "1.1" }));
    const { token: submitter } = await admins.createToken({ user: "sam" }, auth);
    const { token: viewer } = await admins.createToken({ user: "val", role: "viewer" }, auth);
    const scrape = (token: string) =>
      fetch(`${outside}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect((await scrape("ferry_bad_token")).status).toBe(401);
    expect((await scrape(submitter)).status).toBe(200);
    expect((await scrape(viewer)).status).toBe(200);
    const byAdmin = await scrape(root);
    expect(byAdmin.status).toBe(200);
    expect(await byAdmin.text()).toContain("ferry_rpc_duration_seconds_bucket");
  }, 60_000);
});
