/**
 * `ferry daemon --plugin-dir` as a child process with the plugin fixtures: the good plugin loads
 * (one log line) and answers; refused ones are logged and listed; a plugin that crashes, exits,
 * hangs or leaks fails its own job and the daemon goes on; inline isolation and --no-plugins.
 */
import type { ChildProcess } from "node:child_process";
import { chmodSync, cpSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ferryCli, listening, output, runFerry } from "../helpers/daemon-process.js";
import { copyPlugins, fixModes } from "../helpers/plugins.js";

interface Daemon {
  readonly child: ChildProcess;
  readonly url: string;
  readonly token: string;
  readonly stdout: () => string;
  readonly remove: () => void;
}

interface JobStatus {
  state: string;
  progress?: number;
  errorInfo?: { code: string; message: string };
}

const children: ChildProcess[] = [];

async function startDaemon(args: string[], env: NodeJS.ProcessEnv = {}, names?: string[]): Promise<Daemon> {
  const { dir, plugins } = copyPlugins(names);
  // The same good plugin, but anyone may write to it: refused.
  cpSync(join(plugins, "acme"), join(plugins, "acme-open"), { recursive: true });
  fixModes(join(plugins, "acme-open"));
  chmodSync(join(plugins, "acme-open"), 0o777);
  const child = runFerry(["daemon", "--port", "0", "--plugin-dir", plugins, ...args], env, dir.path);
  children.push(child);
  const seen = output(child);
  const url = await listening(child);
  const token = readFileSync(join(dir.path, "ferry-admin.token"), "utf8").trim();
  return { child, url, token, stdout: seen.stdout, remove: dir.remove };
}

async function call<T>(daemon: Daemon, method: string, body: unknown): Promise<T> {
  const response = await fetch(`${daemon.url}/ferry.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${daemon.token}` },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as T;
  if (response.status !== 200) throw new Error(`${method}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** Launches, waits for the end, and answers the final status (and the value when it completed). */
async function run(daemon: Daemon, handler: string, payload: unknown, options: Record<string, unknown> = {}) {
  const { handle } = await call<{ handle: unknown }>(daemon, "JobService/Launch", {
    handler,
    payload,
    options: { attempts: 1, ...options },
  });
  const status = await call<JobStatus>(daemon, "JobService/Wait", { handle, timeout: "25s" });
  const value =
    status.state === "completed"
      ? (await call<{ value: unknown }>(daemon, "JobService/Result", { handle })).value
      : undefined;
  return { status, value };
}

const logLines = (daemon: Daemon) =>
  daemon
    .stdout()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { level: number; msg: string; path?: string });

afterAll(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

describe("ferry daemon with process-isolated plugins", () => {
  let daemon: Daemon;
  beforeAll(async () => {
    daemon = await startDaemon([], { SECRET_CANARY: "do-not-leak", FERRY_LIMITS__ERROR_MAX_BYTES: "1000" });
  }, 30_000);
  afterAll(() => {
    daemon.child.kill("SIGKILL");
    daemon.remove();
  });

  it("logs one Loading line per loaded plugin and an error line per refused one", () => {
    const lines = logLines(daemon);
    const loading = lines.filter((line) => line.msg.startsWith("Loading plugin: ")).map((line) => line.msg);
    const plugins = join(daemon.stdout().match(/"path":"([^"]+)\/acme"/)?.[1] ?? "?");
    expect(loading).toEqual([
      `Loading plugin: acme v1.2.3 from ${plugins}/acme`,
      `Loading plugin: crasher v0.0.1 from ${plugins}/crasher`,
      `Loading plugin: hanger v0.0.1 from ${plugins}/hanger`,
      `Loading plugin: leaker v0.0.1 from ${plugins}/leaker`,
      `Loading plugin: thrower v2.0.0 from ${plugins}/thrower`,
    ]);
    const refused = lines.filter((line) => line.level === 50).map((line) => line.msg);
    expect(refused).toEqual([
      expect.stringMatching(/acme-open: .*acme-open is world-writable \(mode 777\)$/),
      expect.stringMatching(/future: it needs plugin API "\^2", this daemon offers 1\.0\.0$/),
      expect.stringMatching(/impostor: the name ferry is reserved for built-in handlers$/),
    ]);
  });

  it("runs acme.greet in a child process with a clean environment, and its progress reaches the job", async () => {
    const { handle } = await call<{ handle: unknown }>(daemon, "JobService/Launch", {
      handler: "acme.greet",
      payload: { name: "held", holdMs: 1_000 },
    });
    let seen: JobStatus | undefined;
    for (let i = 0; i < 100 && seen?.progress === undefined; i++) {
      const status = await call<JobStatus>(daemon, "JobService/Status", { handle });
      if (status.state === "running" && status.progress !== undefined) seen = status;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen?.progress).toBe(0.5);
    const greeted = await run(daemon, "acme.greet", { name: "ferry" });
    expect(greeted.status.state).toBe("completed");
    const value = greeted.value as { greeting: string; pid: number };
    expect(value.greeting).toBe("hello ferry");
    expect(value.pid).not.toBe(daemon.child.pid);
    // Nothing of the daemon's environment reaches plugin code.
    expect((await run(daemon, "acme.env", null)).value).toEqual({ keys: ["PATH"] });
  });

  it("fails a thrown error as an inline handler would: its message, its own code when it has one", async () => {
    const plain = await run(daemon, "thrower.fail", null);
    expect(plain.status.errorInfo).toMatchObject({
      code: "FERRY_HANDLER_CRASHED",
      message: "thrower says no",
    });
    const coded = await run(daemon, "thrower.coded", null);
    expect(coded.status.errorInfo).toMatchObject({ code: "ACME_BAD_INPUT", message: "bad input" });
    // 6,000 bytes of message, cut to the daemon's limits.error_max_bytes (1000 here, not the default 512).
    const long = await run(daemon, "thrower.long", { length: 3_000 });
    const bytes = Buffer.byteLength(long.status.errorInfo?.message ?? "");
    expect(bytes).toBeGreaterThan(900);
    expect(bytes).toBeLessThanOrEqual(1_000);
    expect((await run(daemon, "acme.greet", {})).status.state).toBe("completed");
  });

  it("fails the job of a plugin that crashes or exits, and goes on", async () => {
    const crashed = await run(daemon, "crasher.crash", null);
    expect(crashed.status).toMatchObject({ state: "failed", errorInfo: { code: "FERRY_HANDLER_CRASHED" } });
    expect((await fetch(`${daemon.url}/healthz`)).status).toBe(200);
    expect((await run(daemon, "acme.greet", {})).value).toMatchObject({ greeting: "hello world" });
    // Restarted for the next call (at most once a second), and ended again.
    const exited = await run(daemon, "crasher.exit", null);
    expect(exited.status.errorInfo).toMatchObject({
      code: "FERRY_HANDLER_CRASHED",
      message: "plugin crasher process ended (exit code 1)",
    });
  }, 20_000);

  it("ends a hanging plugin's job with FERRY_TIMEOUT and kills its process", async () => {
    const started = Date.now();
    const hung = await run(daemon, "hanger.spin", null, { timeout: "2s" });
    expect(hung.status).toMatchObject({ state: "failed", errorInfo: { code: "FERRY_TIMEOUT" } });
    expect(Date.now() - started).toBeLessThan(6_000);
    expect((await run(daemon, "acme.greet", {})).status.state).toBe("completed");
    // Busy in a loop, it cannot hear the abort: killed after the grace.
    const killed = async () =>
      logLines(daemon).some((line) =>
        line.msg.includes("plugin hanger process ended (killed: it did not answer an abort within 2 s"),
      );
    const deadline = Date.now() + 5_000;
    while (!(await killed()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await killed()).toBe(true);
  }, 20_000);

  it("fails the job of a plugin that leaks until its heap limit", async () => {
    const leaked = await run(daemon, "leaker.leak", null, { timeout: "20s" });
    expect(leaked.status).toMatchObject({ state: "failed", errorInfo: { code: "FERRY_HANDLER_CRASHED" } });
    expect((await run(daemon, "acme.greet", {})).status.state).toBe("completed");
  }, 30_000);

  it("lists every plugin with its state through `ferry plugins`, to admins and viewers", async () => {
    const listed = await ferryCli(["plugins", "--json"], {
      FERRY_SERVER: daemon.url,
      FERRY_TOKEN: daemon.token,
    });
    expect(listed.code).toBe(0);
    const rows = listed.stdout
      .trim()
      .split("\n")
      .map(
        (line) => JSON.parse(line) as { name: string; state: string; restarts: number; handlers: string[] },
      );
    const byName = Object.fromEntries(rows.map((row) => [row.name, row]));
    expect(byName.acme).toMatchObject({
      state: "loaded",
      restarts: 0,
      handlers: ["acme.greet", "acme.env", "acme.wait", "acme.forever", "acme.later"],
    });
    expect(byName.crasher).toMatchObject({ state: "crashed", reason: "exit code 1" });
    expect(byName.crasher?.restarts).toBe(1);
    expect(byName.leaker).toMatchObject({ state: "crashed", reason: "killed by SIGABRT" });
    expect(byName.future).toMatchObject({ state: "refused", version: "" });
    expect(byName["acme-open"]).toMatchObject({ state: "refused" });
    expect(byName.ferry).toMatchObject({ state: "refused" });
    // Viewers may read the list; submitters may not (exit 3: denied).
    const cli = (token: string, ...args: string[]) =>
      ferryCli(args, { FERRY_SERVER: daemon.url, FERRY_TOKEN: token });
    const viewer = (await cli(daemon.token, "token", "create", "vic", "--role", "viewer")).stdout.trim();
    const submitter = (await cli(daemon.token, "token", "create", "bob")).stdout.trim();
    expect((await cli(viewer, "plugins", "--json")).stdout).toContain('"name":"acme"');
    expect((await cli(submitter, "plugins")).code).toBe(3);
    const table = await ferryCli(["plugins"], { FERRY_SERVER: daemon.url, FERRY_TOKEN: daemon.token });
    expect(table.stdout).toMatch(/^NAME\s+VERSION\s+STATE/);
    expect(table.stdout).toMatch(/acme\s+1\.2\.3\s+loaded/);
  }, 45_000);
});

describe("ferry daemon with inline plugins, or none", () => {
  it("runs acme.greet inside the daemon with [plugins] isolation = inline", async () => {
    const daemon = await startDaemon([], { FERRY_PLUGINS__ISOLATION: "inline" }, ["acme", "future"]);
    try {
      expect(daemon.stdout()).toContain(`Loading plugin: acme v1.2.3 from `);
      const greeted = await run(daemon, "acme.greet", { name: "inline" });
      expect(greeted.value).toMatchObject({ greeting: "hello inline", pid: daemon.child.pid });
      const { plugins } = await call<{ plugins: { name: string; isolation: string; state: string }[] }>(
        daemon,
        "AdminService/ListPlugins",
        {},
      );
      expect(plugins.map((p) => [p.name, p.state, p.isolation])).toEqual([
        ["acme", "loaded", "inline"],
        ["acme-open", "refused", "inline"],
        ["future", "refused", "inline"],
      ]);
    } finally {
      daemon.child.kill("SIGKILL");
      daemon.remove();
    }
  }, 30_000);

  it("loads nothing with --no-plugins", async () => {
    const daemon = await startDaemon(["--no-plugins"], {}, ["acme"]);
    try {
      expect(daemon.stdout()).not.toContain("Loading plugin");
      expect(daemon.stdout()).not.toContain("refused plugin");
      const listed = await call<{ plugins?: unknown[] }>(daemon, "AdminService/ListPlugins", {});
      expect(listed.plugins ?? []).toEqual([]);
    } finally {
      daemon.child.kill("SIGKILL");
      daemon.remove();
    }
  }, 30_000);
});
