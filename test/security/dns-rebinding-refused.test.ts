/**
 * DNS rebinding: with authentication off, a web page on an attacker's name that resolves to
 * 127.0.0.1 sends its requests to the daemon with that name in `Host` (HTTP/1.1) or `:authority`
 * (HTTP/2). Such requests are refused (403, FERRY_PERMISSION_DENIED) on every route before
 * anything is served or stored; loopback names and `server.allowed_hosts` are answered.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostOfAuthority, hostRule, isAllowedAuthority } from "../../src/daemon/host-check.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { http1, http2Call } from "./raw-calls.js";

const ATTACKER = "rebind.attacker.example";
const DENIED = { status: 403, code: "FERRY_PERMISSION_DENIED" };

describe("host names with authentication off", () => {
  let daemon: TestDaemon | undefined;
  let url = "";
  let port = "";

  beforeAll(async () => {
    daemon = await startTestDaemon({
      env: { FERRY_SERVER__AUTH_ENABLED: "false", FERRY_SERVER__ALLOWED_HOSTS: '["ferry.internal"]' },
    });
    url = daemon.url;
    port = new URL(url).port;
  }, 60_000);

  afterAll(() => daemon?.stop());

  const jobs = () => createClient(JobService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));

  /** A Connect JSON call over HTTP/1.1 with the given Host. */
  const rpc = (host: string, method: string, body: unknown) =>
    http1(
      url,
      "POST",
      `/ferry.v1.JobService/${method}`,
      { host, "content-type": "application/json" },
      JSON.stringify(body),
    );

  it("refuses Launch, Purge, /metrics, /healthz and the dashboard under a foreign Host", async () => {
    const { handle } = await jobs().launch({ handler: "ferry.echo" });
    await jobs().wait({ handle, timeout: "10s" });
    for (const host of [
      ATTACKER,
      `${ATTACKER}:${port}`,
      "localhost.attacker.example",
      "127.0.0.1.nip.io",
      "2130706433",
    ]) {
      const launched = await rpc(host, "Launch", { handler: "ferry.echo", payload: { from: "page" } });
      expect({ host, status: launched.status, code: launched.headers["ferry-error-code"] }).toEqual({
        host,
        ...DENIED,
      });
      const purged = await rpc(host, "Purge", { olderThan: "0s" });
      expect({ host, status: purged.status, code: purged.headers["ferry-error-code"] }).toEqual({
        host,
        ...DENIED,
      });
      for (const path of ["/metrics", "/healthz", "/", "/dashboard/app.js"]) {
        const got = await http1(url, "GET", path, { host });
        expect({ host, path, status: got.status, code: got.headers["ferry-error-code"] }).toEqual({
          host,
          path,
          ...DENIED,
        });
        expect(got.body.toString()).not.toMatch(/ferry_jobs|<html|ok\n/);
      }
    }
    // Nothing was served: the one job is there, not purged, and no other was launched.
    const listed = await jobs().list({});
    expect(listed.jobs.map((job) => job.id)).toEqual([handle!.id]);
  }, 60_000);

  it("refuses a foreign :authority over HTTP/2 (gRPC), and a request naming no host at all", async () => {
    const call = (authority: string) =>
      http2Call(
        url,
        {
          ":method": "POST",
          ":path": "/ferry.v1.JobService/List",
          ":authority": authority,
          "content-type": "application/grpc",
          te: "trailers",
        },
        Buffer.from([0, 0, 0, 0, 0]),
      );
    const foreign = await call(`${ATTACKER}:${port}`);
    expect({ status: foreign.status, code: foreign.headers["ferry-error-code"] }).toEqual(DENIED);
    const local = await call(`localhost:${port}`);
    expect([local.status, local.trailers["grpc-status"] ?? local.headers["grpc-status"]]).toEqual([200, "0"]);
    // HTTP/1.0 needs no Host; such a request is refused too (400: no URL can be made of it,
    // request-target.ts, which runs before the host check).
    const noHost = await new Promise<string>((resolve, reject) => {
      import("node:net").then(({ connect }) => {
        const socket = connect(Number(port), "127.0.0.1", () => socket.end("GET /healthz HTTP/1.0\r\n\r\n"));
        let text = "";
        socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
      }, reject);
    });
    expect(noHost).toMatch(/^HTTP\/1\.[01] 400/);
  }, 30_000);

  it("answers loopback names, with or without a port, and the names in allowed_hosts", async () => {
    for (const host of [
      "localhost",
      `localhost:${port}`,
      "LocalHost.",
      `app.localhost:${port}`,
      `127.0.0.1:${port}`,
      "127.1.2.3",
      `[::1]:${port}`,
      "[::ffff:127.0.0.1]",
      "ferry.internal",
      `FERRY.internal:${port}`,
    ]) {
      const health = await http1(url, "GET", "/healthz", { host });
      expect({ host, status: health.status }).toEqual({ host, status: 200 });
      const listed = await rpc(host, "List", {});
      expect({ host, status: listed.status }).toEqual({ host, status: 200 });
    }
  }, 30_000);
});

describe("host names with authentication on", () => {
  const stops: (() => void)[] = [];
  afterAll(() => {
    for (const stop of stops) stop();
  });

  it("answers any name by default (a token is the wall), and only listed ones when allowed_hosts is set", async () => {
    const open = await startTestDaemon();
    stops.push(open.stop);
    const token = open.adminToken();
    const list = (base: string, host: string) =>
      http1(
        base,
        "POST",
        "/ferry.v1.JobService/List",
        { host, "content-type": "application/json", ...bearer(token).headers },
        "{}",
      );
    expect((await list(open.url, ATTACKER)).status).toBe(200);
    // Without its token a foreign name gets nothing either.
    expect(
      (
        await http1(
          open.url,
          "POST",
          "/ferry.v1.JobService/List",
          { host: ATTACKER, "content-type": "application/json" },
          "{}",
        )
      ).status,
    ).toBe(401);

    const listed = await startTestDaemon({ env: { FERRY_SERVER__ALLOWED_HOSTS: '["jobs.example.com"]' } });
    stops.push(listed.stop);
    const listedToken = listed.adminToken();
    const call = (host: string) =>
      http1(
        listed.url,
        "POST",
        "/ferry.v1.JobService/List",
        { host, "content-type": "application/json", authorization: `Bearer ${listedToken}` },
        "{}",
      );
    const foreign = await call(ATTACKER);
    expect({ status: foreign.status, code: foreign.headers["ferry-error-code"] }).toEqual(DENIED);
    expect((await call("jobs.example.com:443")).status).toBe(200);
    expect((await call("localhost")).status).toBe(200);
  }, 90_000);
});

describe("the host rule alone", () => {
  it("parses Host and :authority values strictly", () => {
    expect(hostOfAuthority("Example.COM:8080")).toBe("example.com");
    expect(hostOfAuthority("[::1]:50051")).toBe("::1");
    expect(hostOfAuthority("localhost.")).toBe("localhost");
    for (const bad of [
      "",
      ":80",
      "::1",
      "[::1",
      "[evil]:1",
      "a b",
      "host:port",
      "host:123456",
      "a@b",
      "x/y",
    ]) {
      expect(hostOfAuthority(bad), bad).toBeUndefined();
    }
  });

  it("allows loopback names always, listed names when given, and nothing else", () => {
    const rule = hostRule(false, ["Jobs.Example.com", "[fd00::5]"])!;
    for (const ok of [
      "localhost",
      "a.b.localhost:1",
      "127.0.0.1",
      "127.255.0.9:80",
      "[::1]",
      "jobs.example.com",
      "[fd00::5]:1",
    ]) {
      expect(isAllowedAuthority(rule, ok), ok).toBe(true);
    }
    for (const no of [
      ATTACKER,
      "localhost.evil",
      "evil-localhost",
      "128.0.0.1",
      "0.0.0.0",
      "[::2]",
      "10.0.0.1",
      ".localhost",
    ]) {
      expect(isAllowedAuthority(rule, no), no).toBe(false);
    }
    expect(hostRule(true, [])).toBeUndefined();
    expect(hostRule(true, ["a.example"])).toBeDefined();
  });
});
