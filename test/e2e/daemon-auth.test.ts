/**
 * `ferry daemon` with authentication on (the default), as a child process on a free port: the
 * first-start admin token file, tokens by header over Connect JSON and gRPC, roles and grants
 * through the CLI with the SPEC's exit codes, revocation of a live stream, and the limit on bad
 * tokens.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { ferryCli, finished, listening, output, runFerry } from "../helpers/daemon-process.js";
import { eventually, tempDir } from "../helpers/temp.js";

describe("ferry daemon with authentication", () => {
  const children: ChildProcess[] = [];
  const dirs: { remove(): void }[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    for (const dir of dirs.splice(0)) dir.remove();
  });

  async function daemon(dir = tempDir()) {
    if (!dirs.includes(dir)) dirs.push(dir);
    const child = runFerry(["daemon", "--port", "0", "--no-plugins"], {}, dir.path);
    children.push(child);
    const seen = output(child);
    const url = await listening(child);
    const tokenFile = join(dir.path, "ferry-admin.token");
    return { child, url, dir, seen, tokenFile, admin: () => readFileSync(tokenFile, "utf8").trim() };
  }

  /** Connect JSON over HTTP/1.1, as curl sends it. */
  const post = (url: string, method: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/ferry.v1.JobService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  const cli = (url: string, token: string, ...args: string[]) =>
    ferryCli(args, { FERRY_SERVER: url, FERRY_TOKEN: token });

  const jobs = (transport: Transport) => createClient(JobService, transport);
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  it("writes the first admin's token to a 0600 file, logs its path and never the token", async () => {
    const first = await daemon();
    expect(statSync(first.tokenFile).mode & 0o777).toBe(0o600);
    const token = first.admin();
    expect(token).toMatch(/^ferry_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}$/);
    expect(first.seen.stdout()).toContain(first.tokenFile);
    expect(first.seen.stdout() + first.seen.stderr()).not.toContain(token.slice(6));

    // A restart finds the admin and leaves the file alone.
    const stopped = finished(first.child);
    first.child.kill("SIGTERM");
    const exit = await stopped;
    expect({ code: exit.code, signal: exit.signal, stderr: exit.stderr }).toMatchObject({
      code: 0,
      signal: null,
    });
    const again = await daemon(first.dir);
    expect(again.admin()).toBe(token);
    expect(again.seen.stdout()).not.toContain("first start");
    const users = await cli(again.url, token, "users", "--json");
    expect(users.code).toBe(0);
    expect(JSON.parse(users.stdout)).toMatchObject({ name: "admin", roles: ["admin"], tokens: 1 });
  }, 60_000);

  it("takes a token as Bearer or x-api-key, over Connect JSON and gRPC; nothing without one", async () => {
    const { url, admin } = await daemon();
    const token = admin();
    const none = await post(url, "List", {});
    expect(none.status).toBe(401);
    expect(none.headers.get("ferry-error-code")).toBe("FERRY_UNAUTHENTICATED");
    const wrong = await post(url, "List", {}, { authorization: `Bearer ${token.slice(0, -1)}x` });
    expect([wrong.status, wrong.headers.get("ferry-error-code")]).toEqual([401, "FERRY_UNAUTHENTICATED"]);
    expect(await wrong.text()).not.toContain(token.slice(6));
    const basic = await post(url, "List", {}, { authorization: `Basic ${token}` });
    expect(basic.status).toBe(401);

    const launched = await post(
      url,
      "Launch",
      { handler: "ferry.echo", payload: 7 },
      { authorization: `Bearer ${token}` },
    );
    expect(launched.status).toBe(200);
    const { handle } = (await launched.json()) as { handle: unknown };
    const waited = await post(url, "Wait", { handle, timeout: "10s" }, { "x-api-key": token });
    expect(((await waited.json()) as { state: string }).state).toBe("completed");

    const grpc = jobs(createGrpcTransport({ baseUrl: url }));
    const error = await grpc.list({}).catch((e: unknown) => ConnectError.from(e));
    expect(error).toMatchObject({ code: Code.Unauthenticated });
    expect((await grpc.list({}, bearer(token))).jobs).toHaveLength(1);
  }, 60_000);

  it("manages users from the CLI with the SPEC's exit codes: roles, grants, self-grant, last admin", async () => {
    const { url, admin } = await daemon();
    const root = admin();
    const created = await cli(url, root, "token", "create", "bob");
    expect(created.code).toBe(0);
    const bob = created.stdout.trim();
    expect(bob).toMatch(/^ferry_/);
    const viewer = (await cli(url, root, "token", "create", "vic", "--role", "viewer", "--json")).stdout;
    const vic = (JSON.parse(viewer) as { token: string }).token;

    // bob is a submitter: launches, sees his own jobs only, manages nobody.
    const connect = jobs(createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const { handle: rootJob } = await connect.launch({ handler: "ferry.echo" }, bearer(root));
    const { handle: bobJob } = await connect.launch({ handler: "ferry.echo" }, bearer(bob));
    expect(bobJob?.id).toBeDefined();
    const foreign = await connect
      .status({ handle: rootJob }, bearer(bob))
      .catch((e: unknown) => ConnectError.from(e));
    expect(foreign).toMatchObject({ code: Code.NotFound });
    expect((await cli(url, bob, "users")).code).toBe(3);
    expect((await cli(url, bob, "token", "create", "mallory", "--role", "admin")).code).toBe(3);

    // vic views: lists, launches nothing.
    expect((await connect.list({}, bearer(vic))).jobs.length).toBe(2);
    const viewing = await connect
      .launch({ handler: "ferry.echo" }, bearer(vic))
      .catch((e: unknown) => ConnectError.from(e));
    expect(viewing).toMatchObject({ code: Code.PermissionDenied });

    // sql.exec is restricted until granted.
    const refused = await post(
      url,
      "Launch",
      { handler: "sql.exec", payload: { sql: "SELECT 1" } },
      {
        authorization: `Bearer ${bob}`,
      },
    );
    expect([refused.status, refused.headers.get("ferry-error-code")]).toEqual([
      403,
      "FERRY_PERMISSION_DENIED",
    ]);
    const granted = await cli(url, root, "grant", "sql.exec", "bob", "--json");
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout)).toMatchObject({ name: "bob", grants: ["sql.exec"] });
    const allowed = await post(
      url,
      "Launch",
      { handler: "sql.exec", payload: { sql: "SELECT 1" } },
      {
        authorization: `Bearer ${bob}`,
      },
    );
    expect(allowed.status).toBe(200);

    // Nobody grants to itself; the last admin stays; bad names are usage errors.
    const self = await cli(url, root, "grant", "viewer", "admin");
    expect([self.code, self.stderr]).toEqual([
      3,
      "ferry: FERRY_PERMISSION_DENIED: a user cannot grant itself\n",
    ]);
    const last = await cli(url, root, "token", "revoke", "admin");
    expect(last.code).toBe(3);
    expect(last.stderr).toContain("last admin");
    expect((await cli(url, root, "revoke", "admin", "admin")).code).toBe(3);
    expect((await cli(url, root, "grant", "../etc", "bob")).code).toBe(2);
    expect((await cli(url, root, "token", "create", "__proto__")).code).toBe(2);
    expect((await cli(url, root, "grant", "viewer", "nobody")).code).toBe(3);

    // With a second admin, the first may go.
    await cli(url, root, "grant", "admin", "bob");
    const revoked = await cli(url, bob, "token", "revoke", "admin", "--json");
    expect([revoked.code, JSON.parse(revoked.stdout)]).toEqual([0, { user: "admin", revoked: 1 }]);
    expect((await cli(url, root, "users")).code).toBe(3);

    // Exit 3 for a bad token, 4 for no daemon.
    expect((await cli(url, "ferry_nope", "users")).code).toBe(3);
    const away = await cli("http://127.0.0.1:1", root, "users");
    expect(away.code).toBe(4);
    expect(away.stderr).toContain("cannot reach the daemon");
  }, 120_000);

  it("ends an open stream within a second of its token's revocation; the next call is refused", async () => {
    const { url, admin } = await daemon();
    const root = admin();
    const connect = createConnectTransport({ baseUrl: url, httpVersion: "1.1" });
    const admins = createClient(AdminService, connect);
    for (const transport of [connect, createGrpcTransport({ baseUrl: url })]) {
      const { token: bob } = await admins.createToken({ user: "bob" }, bearer(root));
      const client = jobs(transport);
      const { handle } = await client.launch(
        { handler: "ferry.sleep", payload: fromJson(ValueSchema, { ms: 30_000 }) },
        bearer(bob),
      );
      const seen: string[] = [];
      const watching = (async () => {
        try {
          for await (const status of client.watch({ handle }, bearer(bob))) seen.push(status.state);
          return { error: undefined, at: Date.now() };
        } catch (error) {
          return { error: ConnectError.from(error), at: Date.now() };
        }
      })();
      await eventually(() => seen.length > 0, "the stream's first status");
      const { revoked } = await admins.revokeToken({ user: "bob" }, bearer(root));
      const revokedAt = Date.now();
      expect(revoked).toBe(1);
      const ended = await watching;
      expect(ended.error?.code).toBe(Code.Unauthenticated);
      expect(ended.at - revokedAt).toBeLessThan(1_000);
      const next = await client.list({}, bearer(bob)).catch((e: unknown) => ConnectError.from(e));
      expect(next).toMatchObject({ code: Code.Unauthenticated });
    }
  }, 60_000);

  it("refuses an address's bad tokens for a while once it kept presenting them, never a good one", async () => {
    const { url, admin } = await daemon();
    const root = admin();
    for (let i = 0; i < 10; i++) {
      const bad = await post(
        url,
        "List",
        {},
        { authorization: `Bearer ferry_${"a".repeat(12)}_${"b".repeat(43)}` },
      );
      expect(bad.status).toBe(401);
    }
    // Every local process shares this address: the admin's good token still passes.
    expect((await post(url, "List", {}, { authorization: `Bearer ${root}` })).status).toBe(200);
    const blocked = await post(
      url,
      "List",
      {},
      { authorization: `Bearer ferry_${"a".repeat(12)}_${"b".repeat(43)}` },
    );
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("ferry-error-code")).toBe("FERRY_QUOTA_EXCEEDED");
    expect(await blocked.text()).toMatch(/try again in \d+ s/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 60_000);
});
