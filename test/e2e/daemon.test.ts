/**
 * `ferry daemon` as a child process on a free port, driven over the network three ways: Connect
 * JSON over HTTP/1.1 (what curl sends), gRPC over HTTP/2, and gRPC-Web; plus its refusals to
 * start unsafely. These run with authentication off, on loopback; daemon-auth.test.ts covers
 * tokens.
 */
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { finished, listening, runFerry as run } from "../helpers/daemon-process.js";
import { tempDir } from "../helpers/temp.js";

const AUTH_OFF = { FERRY_SERVER__AUTH_ENABLED: "false" };

describe("ferry daemon", () => {
  const children: ChildProcess[] = [];
  const dirs: { remove(): void }[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    for (const dir of dirs.splice(0)) dir.remove();
  });

  async function daemon() {
    const dir = tempDir();
    dirs.push(dir);
    const child = run(["daemon", "--port", "0", "--store", `sqlite:${join(dir.path, "ferry.db")}`], AUTH_OFF);
    children.push(child);
    return { child, url: await listening(child) };
  }

  it("serves Connect JSON over HTTP/1.1 (curl), gRPC over HTTP/2 and gRPC-Web on one port", async () => {
    const { child, url } = await daemon();
    const health = await fetch(`${url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);

    // Connect JSON, as curl sends it.
    const post = (method: string, body: unknown) =>
      fetch(`${url}/ferry.v1.JobService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const launched = await post("Launch", { handler: "ferry.echo", payload: { x: 1 } });
    expect(launched.status).toBe(200);
    const { handle } = (await launched.json()) as { handle: { id: string; cookie: string } };
    const waited = (await (await post("Wait", { handle, timeout: "10s" })).json()) as { state: string };
    expect(waited.state).toBe("completed");
    expect(await (await post("Result", { handle })).json()).toMatchObject({
      state: "completed",
      value: { x: 1 },
    });
    const missing = await post("Status", { handle: { id: handle.id, cookie: "wrong" } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "not_found" });
    expect(missing.headers.get("ferry-error-code")).toBe("FERRY_NOT_FOUND");

    // gRPC (HTTP/2, prior knowledge) and gRPC-Web (HTTP/1.1) clients.
    for (const transport of [
      createGrpcTransport({ baseUrl: url }),
      createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
    ]) {
      const client = createClient(JobService, transport);
      const { handle: h } = await client.launch({ handler: "ferry.echo" });
      expect((await client.wait({ handle: h, timeout: "10s" })).state).toBe("completed");
      const error = await client.status({ handle: { id: h!.id, cookie: "nope" } }).catch((e: unknown) => e);
      expect(ConnectError.from(error).code).toBe(Code.NotFound);
    }

    const unknown = await fetch(`${url}/nope`);
    expect(unknown.status).toBe(404);
    const done = finished(child);
    child.kill("SIGTERM");
    expect((await done).signal).toBeNull();
    expect((await done).code).toBe(0);
  }, 60_000);

  it("closes cleanly on a SIGTERM sent the moment it says it listens", async () => {
    // A supervisor may signal as soon as it reads the line; the handler must already be in.
    for (let round = 0; round < 4; round++) {
      const { child } = await daemon();
      const done = finished(child);
      child.kill("SIGTERM");
      const exit = await done;
      expect({ round, code: exit.code, signal: exit.signal }).toEqual({ round, code: 0, signal: null });
      expect(exit.stdout).toContain('"msg":"closed"');
    }
  }, 60_000);

  it("refuses a request body over the payload limit and stays up", async () => {
    const { url } = await daemon();
    const big = "x".repeat(1_200_000);
    const response = await fetch(`${url}/ferry.v1.JobService/Launch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ handler: "ferry.echo", payload: big }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 60_000);

  it("refuses to start off loopback without authentication, or without TLS unless told so", async () => {
    const open = await finished(run(["daemon", "--port", "0", "--bind", "0.0.0.0"], AUTH_OFF));
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 with auth_enabled = false/);
    const clear = await finished(run(["daemon", "--port", "0", "--bind", "0.0.0.0"]));
    expect(clear.code).toBe(2);
    expect(clear.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without TLS/);
    const typo = await finished(run(["daemon"], { FERRY_SERVER__BIND_ADRESS: "x" }));
    expect([typo.code, typo.stderr]).toEqual([
      2,
      "ferry: FERRY_INVALID_ARGUMENT: FERRY_SERVER__BIND_ADRESS: server.bind_adress: unknown key\n",
    ]);
  }, 60_000);

  it("prints the effective config with secrets hidden", async () => {
    const shown = await finished(
      run(["daemon", "--print-config", "--port", "6000"], { FERRY_STORE__URL: "postgres://u:pw-123@db/x" }),
    );
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("port = 6000");
    expect(shown.stdout).toContain('url = "postgres://u:***@db/x"');
    expect(shown.stdout).not.toContain("pw-123");
  }, 60_000);
});
