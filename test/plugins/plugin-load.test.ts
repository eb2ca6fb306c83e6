/**
 * Plugins loaded in-process with a real store and worker: both isolations give the same outcomes,
 * controls (snooze, discard) and cancel cross the process boundary, a crash loop is slowed, and a
 * name taken twice is refused.
 */
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { Ferry } from "../../src/api/ferry.js";
import { daemonLogger } from "../../src/daemon/log.js";
import { BUILTIN_HANDLERS } from "../../src/handlers/builtin.js";
import { type LoadedPlugins, loadPlugins } from "../../src/plugins/load.js";
import { copyPlugins, fixModes } from "../helpers/plugins.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(isolation: "process" | "inline", names = ["acme", "crasher", "thrower"]) {
  const { dir, plugins } = copyPlugins(names);
  cleanups.push(dir.remove);
  const stream = new PassThrough();
  let logText = "";
  stream.on("data", (chunk: Buffer) => (logText += chunk.toString()));
  const loaded: LoadedPlugins = await loadPlugins(
    { dirs: [plugins], isolation, builtinHandlers: Object.keys(BUILTIN_HANDLERS) },
    daemonLogger(stream),
  );
  cleanups.push(() => loaded.close());
  const ferry = await Ferry.open({ store: `sqlite:${join(dir.path, "ferry.db")}` });
  cleanups.push(() => ferry.close({ grace: "1s" }));
  const worker = ferry.worker({ handlers: { ...loaded.handlers }, pollInterval: "50ms" });
  await worker.start();
  cleanups.push(() => worker.stop({ grace: "1s" }));
  const run = async (
    handler: string,
    payload: unknown = null,
    options: { attempts?: number; timeout?: string } = {},
  ) => {
    const handle = await ferry.launch(handler, payload, { attempts: 1, ...options });
    return ferry.wait(handle, { timeout: "20s" });
  };
  return { ferry, loaded, run, plugins, log: () => logText };
}

describe.each(["process", "inline"] as const)("plugins with isolation = %s", (isolation) => {
  it("runs handlers and fails thrown errors as the worker fails any handler's", async () => {
    const { run, loaded, ferry } = await setUp(isolation);
    const handle = await ferry.launch("acme.greet", { name: "x" });
    await ferry.wait(handle, { timeout: "20s" });
    expect((await ferry.result(handle)).value).toMatchObject({ greeting: "hello x", attempt: 1 });
    expect((await run("thrower.fail")).errorInfo).toMatchObject({
      code: "FERRY_HANDLER_CRASHED",
      message: "thrower says no",
      retryable: false,
    });
    expect((await run("thrower.coded", null, { attempts: 3 })).errorInfo).toMatchObject({
      code: "ACME_BAD_INPUT",
      attempt: 1,
    });
    expect((await run("thrower.discard")).errorInfo).toMatchObject({
      code: "FERRY_DISCARDED",
      message: "not today",
    });
    const later = await ferry.launch("acme.later", null, { attempts: 1 });
    expect(await ferry.wait(later, { timeout: "20s" })).toMatchObject({ state: "completed" });
    expect((await ferry.result(later)).value).toEqual({ runs: 2 });
    expect(loaded.list().map((p) => [p.name, p.state, p.isolation])).toEqual([
      ["acme", "loaded", isolation],
      ["crasher", "loaded", isolation],
      ["thrower", "loaded", isolation],
    ]);
  });

  it("passes a cancel on to the handler, which ends the job as cancelled", async () => {
    const { ferry, loaded } = await setUp(isolation, ["acme"]);
    const handle = await ferry.launch("acme.wait", null);
    for (let i = 0; i < 200 && (await ferry.status(handle)).state !== "running"; i++)
      await new Promise((r) => setTimeout(r, 10));
    await ferry.cancel(handle, { grace: "10s" });
    const started = Date.now();
    const status = await ferry.wait(handle, { timeout: "10s" });
    expect(status.state).toBe("cancelled");
    // The handler heard it: well inside the grace, and nothing was killed.
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(loaded.list()[0]).toMatchObject({ state: "loaded", restarts: 0 });
  });
});

describe("process-isolated plugins", () => {
  it("restarts a crashed plugin for the next call, at most once a second", async () => {
    const { run, loaded, log } = await setUp("process", ["crasher"]);
    const first = await run("crasher.exit");
    expect(first.errorInfo).toMatchObject({ code: "FERRY_HANDLER_CRASHED" });
    expect(loaded.list()[0]).toMatchObject({ state: "crashed", reason: "exit code 1", restarts: 0 });
    const started = Date.now();
    await run("crasher.exit");
    await run("crasher.exit");
    // Two restarts, a second apart at least.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(loaded.list()[0]).toMatchObject({ state: "crashed", restarts: 2 });
    expect(log()).toContain("plugin crasher restarted");
  });

  it("times out a handler that never settles without killing a process that still listens", async () => {
    const { run, loaded, ferry } = await setUp("process", ["acme"]);
    const greet = async () => {
      const handle = await ferry.launch("acme.greet", null);
      await ferry.wait(handle, { timeout: "10s" });
      return ((await ferry.result(handle)).value as { pid: number }).pid;
    };
    const pid = await greet();
    expect((await run("acme.forever", null, { timeout: "300ms" })).errorInfo).toMatchObject({
      code: "FERRY_TIMEOUT",
    });
    // Past the 2 s abort grace: the child acknowledged the abort, so it was left alone.
    await new Promise((r) => setTimeout(r, 2_300));
    expect(loaded.list()[0]).toMatchObject({ state: "loaded", restarts: 0 });
    expect(await greet()).toBe(pid);
  });

  it("refuses a second plugin with a name already taken, and stops its process", async () => {
    const { dir, plugins } = copyPlugins([]);
    cleanups.push(dir.remove);
    const fixtures = new URL("../fixtures/plugins/", import.meta.url).pathname;
    cpSync(join(fixtures, "acme"), join(plugins, "a-acme"), { recursive: true });
    cpSync(join(fixtures, "acme"), join(plugins, "b-acme"), { recursive: true });
    writeFileSync(join(plugins, "b-acme", "extra.txt"), "second copy\n");
    fixModes(plugins);
    const loaded = await loadPlugins(
      { dirs: [plugins], isolation: "process", builtinHandlers: ["ferry.echo"] },
      daemonLogger(new PassThrough()),
    );
    cleanups.push(() => loaded.close());
    expect(loaded.list().map((p) => [p.name, p.state, p.reason])).toEqual([
      ["acme", "loaded", ""],
      ["acme", "refused", `the name acme is taken by the plugin at ${join(plugins, "a-acme")}`],
    ]);
    expect(Object.keys(loaded.handlers)).toEqual([
      "acme.greet",
      "acme.env",
      "acme.wait",
      "acme.forever",
      "acme.later",
    ]);
    await loaded.close();
    expect(loaded.list()[0]?.state).toBe("stopped");
  });
});
