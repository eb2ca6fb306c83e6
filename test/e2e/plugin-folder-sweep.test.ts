/**
 * A daemon killed with SIGKILL leaves its plugins' private resolve folders
 * (ferry-plugin-PID-XXXXXX, src/plugins/resolve-root.ts) in the temp folder; the next daemon to
 * start removes them, and nothing else: not a live daemon's folder, not a symlink or another
 * user's folder of the same name, not a name of another shape, and nothing a removed folder links
 * to. Real daemon processes, the first one killed for real; each sees a temp folder of the test's
 * own (TMPDIR), so other tests' daemons are not in the picture.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { cleanupsAfterEach } from "../helpers/service-harness.js";
import { tempDir } from "../helpers/temp.js";
import { copyFixture, pluginBase, runJob, startPluginDaemon } from "../security/plugin-daemon.js";

const NOBODY = 65534;

describe("plugin folders left by a killed daemon", () => {
  const cleanups = cleanupsAfterEach();

  it("are removed at the next start, while a live daemon's folder and look-alikes stay", async () => {
    expect(process.getuid?.()).toBe(0);
    // The daemons' temp folder: plugin processes (nobody) must reach the folders made in it.
    const tmp = tempDir("ferry-sweep-");
    cleanups.push(tmp.remove);
    chmodSync(tmp.path, 0o755);
    const env = { TMPDIR: tmp.path };
    const base = pluginBase();
    cleanups.push(base.remove);
    const plugins = join(base.path, "plugins");
    copyFixture("acme", join(plugins, "acme"));

    const start = async () => {
      const daemon = await startPluginDaemon([plugins], env);
      cleanups.push(() => daemon.stop());
      return daemon;
    };
    const folderOf = (daemon: TestDaemon) => {
      const mine = readdirSync(tmp.path).filter((name) =>
        name.startsWith(`ferry-plugin-${daemon.child.pid}-`),
      );
      expect(mine).toHaveLength(1);
      return join(tmp.path, mine[0]!);
    };
    const killed = await start();
    const live = await start();
    const killedFolder = folderOf(killed);
    const liveFolder = folderOf(live);
    expect(await runJob(live, "acme.greet", { name: "before" })).toMatchObject({ state: "completed" });

    killed.child.kill("SIGKILL");
    await new Promise((resolve) => killed.child.once("exit", resolve));
    const deadPid = killed.child.pid!;
    expect(() => process.kill(deadPid, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }));
    expect(existsSync(killedFolder)).toBe(true);

    // Look-alikes of the dead daemon's folder that are not its to remove.
    const target = join(tmp.path, "linked");
    mkdirSync(target);
    writeFileSync(join(target, "keep.txt"), "kept\n");
    const link = join(tmp.path, `ferry-plugin-${deadPid}-Link01`);
    symlinkSync(target, link);
    const foreign = join(tmp.path, `ferry-plugin-${deadPid}-Other1`);
    mkdirSync(foreign);
    chownSync(foreign, NOBODY, NOBODY);
    const noPid = join(tmp.path, "ferry-plugin-abcdef");
    mkdirSync(noPid);
    const otherShape = join(tmp.path, `ferry-plugin-${deadPid}-toolongname`);
    mkdirSync(otherShape);

    // The sweep runs at every start, with plugins or without.
    const next = await startTestDaemon({ env });
    cleanups.push(() => next.stop());
    expect(existsSync(killedFolder)).toBe(false);
    expect(next.log()).toContain("removed 1 plugin folder(s) left by daemons that are gone");
    expect(next.log()).toContain(killedFolder);

    expect(existsSync(join(liveFolder, "node_modules", "ferry", "package.json"))).toBe(true);
    for (const kept of [link, foreign, noPid, otherShape]) expect(existsSync(kept), kept).toBe(true);
    expect(readdirSync(target)).toEqual(["keep.txt"]);
    // The killed daemon's folder linked to the plugin's real folder: that link was not followed.
    expect(existsSync(join(plugins, "acme", "index.mjs"))).toBe(true);
    expect(await runJob(live, "acme.greet", { name: "after" })).toMatchObject({
      state: "completed",
      value: { greeting: "hello after" },
    });
  }, 90_000);
});
