import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Ferry } from "../../src/index.js";
import { output as daemonOutput, finished, runFerry } from "../helpers/daemon-process.js";
import { copyPlugins } from "../helpers/plugins.js";
import { eventually, tempDir } from "../helpers/temp.js";

const bin = new URL("../../bin/ferry.js", import.meta.url).pathname;

function run(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const output = (child: ChildProcess): Promise<string> =>
  new Promise((resolve) => {
    let text = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("\n")) resolve(text);
    });
    child.on("exit", () => resolve(text));
  });

const exitCode = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on("exit", (code) => resolve(code));
  });

describe("the ferry command", () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  });

  it("`ferry worker` serves the built-in handlers and stops cleanly on SIGTERM", async () => {
    const dir = tempDir();
    try {
      const store = `sqlite:${join(dir.path, "ferry.db")}`;
      const worker = run(["worker", "--store", store, "--concurrency", "2"]);
      children.push(worker);
      const seen = daemonOutput(worker);
      await eventually(() => seen.stdout().includes("running on"), "the worker to start", 20_000);
      expect(seen.stdout()).toMatch(/ferry worker .* running on sqlite:.*ferry\.db/);
      const ferry = await Ferry.open({ store });
      try {
        const echo = await ferry.launch("ferry.echo", { hello: "world" });
        const sleep = await ferry.launch("ferry.sleep", { ms: 50 });
        await ferry.drain([echo, sleep], { timeout: "20s" });
        expect(await ferry.result(echo)).toMatchObject({ state: "completed", value: { hello: "world" } });
        expect(await ferry.result(sleep)).toMatchObject({ state: "completed", value: { slept: 50 } });
      } finally {
        await ferry.close();
      }
      worker.kill("SIGTERM");
      expect(await exitCode(worker)).toBe(0);
    } finally {
      dir.remove();
    }
  });

  it("`ferry worker` loads the plugins of --plugin-dir, runs their handlers, and none with --no-plugins", async () => {
    const { dir, plugins } = copyPlugins(["acme", "future"]);
    try {
      const store = `sqlite:${join(dir.path, "ferry.db")}`;
      const worker = runFerry(["worker", "--store", store, "--plugin-dir", plugins], {}, dir.path);
      children.push(worker);
      const seen = daemonOutput(worker);
      await eventually(() => seen.stdout().includes("running on"), "the worker to start", 20_000);
      const lines = seen.stdout();
      expect(lines).toContain(`Loading plugin: acme v1.2.3 from ${plugins}/acme`);
      expect(lines).toMatch(/future: it needs plugin API/);
      const ferry = await Ferry.open({ store });
      try {
        const greet = await ferry.launch("acme.greet", { name: "worker" }, { attempts: 1 });
        const [status] = await ferry.drain([greet], { timeout: "20s" });
        expect(status?.state).toBe("completed");
        const value = (await ferry.result(greet)).value as { greeting: string; pid: number };
        expect(value.greeting).toBe("hello worker");
        expect(value.pid).not.toBe(worker.pid); // process isolation, as in the daemon
      } finally {
        await ferry.close();
      }
      const stopped = finished(worker);
      worker.kill("SIGTERM");
      expect(await stopped).toMatchObject({ code: 0, signal: null });

      const bare = runFerry(
        ["worker", "--store", store, "--plugin-dir", plugins, "--no-plugins"],
        {},
        dir.path,
      );
      children.push(bare);
      const bareSeen = daemonOutput(bare);
      await eventually(() => bareSeen.stdout().includes("running on"), "the bare worker to start", 20_000);
      expect(bareSeen.stdout()).not.toContain("Loading plugin");
      const bareStopped = finished(bare);
      bare.kill("SIGTERM");
      expect((await bareStopped).code).toBe(0);
    } finally {
      dir.remove();
    }
  }, 60_000);

  it("`ferry migrate` creates the schema; unknown commands exit with the usage code", async () => {
    const dir = tempDir();
    try {
      const migrate = run(["migrate", "--store", `sqlite:${join(dir.path, "m.db")}`]);
      expect(await output(migrate)).toMatch(/sqlite store at schema version \d+/);
      expect(await exitCode(migrate)).toBe(0);
      expect(await exitCode(run(["no-such-command"]))).toBe(2);
    } finally {
      dir.remove();
    }
  });
});
