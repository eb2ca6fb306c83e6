import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Ferry } from "../../src/index.js";
import { tempDir } from "../helpers/temp.js";

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
      expect(await output(worker)).toMatch(/ferry worker .* running on sqlite:.*ferry\.db/);
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
