/**
 * A real daemon (bin/ferry.js) with plugin dirs, for the plugin tests: run a plugin handler to its
 * end over Connect JSON, and read the plugin list.
 */
import { chmodSync, cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { fixModes } from "../helpers/plugins.js";

const fixtures = new URL("../fixtures/plugins/", import.meta.url).pathname;

/** A fresh folder under /tmp (root-owned and sticky), open to others' reading so nobody can reach plugins in it. */
export function pluginBase(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "ferry-plugin-sec-"));
  chmodSync(path, 0o755);
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A fixture copied to `dest` with the modes the daemon accepts. */
export function copyFixture(name: string, dest: string): string {
  cpSync(join(fixtures, name), dest, { recursive: true });
  fixModes(dest);
  return dest;
}

export async function startPluginDaemon(dirs: string[], env: NodeJS.ProcessEnv = {}): Promise<TestDaemon> {
  return startTestDaemon({ args: dirs.flatMap((dir) => ["--plugin-dir", dir]), env });
}

export interface PluginSuite {
  /** The suite's folder (from pluginBase), once its beforeAll ran. */
  readonly base: string;
  readonly daemon: TestDaemon;
}

export interface PluginSuiteSetup {
  /** Fixtures copied into BASE/plugins. */
  readonly fixtures?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Runs in BASE before the daemon starts; may name the plugin dirs (else BASE/plugins) and add env. */
  readonly prepare?: (base: string) => { dirs?: string[]; env?: NodeJS.ProcessEnv } | undefined;
  /** Runs once the daemon is up, before the suite's tests. */
  readonly started?: (daemon: TestDaemon) => unknown;
}

/**
 * A daemon with plugins for one `describe`: registers its beforeAll (a fresh base folder, the
 * fixtures and `prepare`, the daemon) and its afterAll (the daemon stopped, the folder removed).
 */
export function pluginDaemonSuite(setup: PluginSuiteSetup = {}): PluginSuite {
  let base: ReturnType<typeof pluginBase> | undefined;
  let daemon: TestDaemon | undefined;
  beforeAll(async () => {
    base = pluginBase();
    const plugins = join(base.path, "plugins");
    for (const name of setup.fixtures ?? []) copyFixture(name, join(plugins, name));
    const prepared = setup.prepare?.(base.path) ?? {};
    daemon = await startPluginDaemon(prepared.dirs ?? [plugins], { ...setup.env, ...prepared.env });
    await setup.started?.(daemon);
  }, 30_000);
  afterAll(() => {
    daemon?.stop();
    base?.remove();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the plugin suite's ${what} is not set up yet`);
    return value;
  };
  return {
    get base() {
      return ready(base, "base folder").path;
    },
    get daemon() {
      return ready(daemon, "daemon");
    },
  };
}

async function call<T>(daemon: TestDaemon, method: string, body: unknown): Promise<T> {
  const response = await fetch(`${daemon.url}/ferry.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${daemon.adminToken()}` },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as T;
  if (response.status !== 200) throw new Error(`${method}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

export interface Ran {
  readonly state: string;
  readonly value?: unknown;
  readonly errorInfo?: { code: string; message: string };
}

/** Launches `handler` once (one attempt) and answers how it ended. */
export async function runJob(daemon: TestDaemon, handler: string, payload: unknown = null): Promise<Ran> {
  const { handle } = await call<{ handle: unknown }>(daemon, "JobService/Launch", {
    handler,
    payload,
    options: { attempts: 1, timeout: "20s" },
  });
  const status = await call<Ran>(daemon, "JobService/Wait", { handle, timeout: "25s" });
  if (status.state !== "completed") return status;
  const { value } = await call<{ value: unknown }>(daemon, "JobService/Result", { handle });
  return { ...status, value };
}

export interface Listed {
  readonly name: string;
  readonly state: string;
  readonly reason?: string;
  readonly path: string;
}

/** Every plugin the daemon found, by folder name (a refused plugin's name is its folder's). */
export async function pluginsByFolder(daemon: TestDaemon): Promise<Record<string, Listed>> {
  const { plugins } = await call<{ plugins?: Listed[] }>(daemon, "AdminService/ListPlugins", {});
  return Object.fromEntries((plugins ?? []).map((p) => [p.path.split("/").at(-1)!, p]));
}

/** The daemon process still runs, as it was started, and answers its health check. */
export async function expectDaemonUp(daemon: TestDaemon): Promise<void> {
  expect(daemon.child.exitCode).toBe(null);
  expect(daemon.child.signalCode).toBe(null);
  expect((await fetch(`${daemon.url}/healthz`)).status).toBe(200);
}
