/**
 * A plugin folder anywhere, with no node_modules of its own, imports `ferry/plugin` or `ferry` and
 * gets this daemon's Ferry, in both isolations. The first plugin is docs/plugins.md's example as
 * written (its package.json line and its index.mjs block), loaded from a folder under /tmp, outside
 * this checkout and any node_modules. A plugin may still bring its own dependencies.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestDaemon } from "../helpers/daemon-process.js";
import { fixModes } from "../helpers/plugins.js";
import { pluginBase, pluginsByFolder, runJob, startPluginDaemon } from "../security/plugin-daemon.js";

const docs = readFileSync(new URL("../../docs/plugins.md", import.meta.url), "utf8");

/** The docs' index.mjs block and the package.json line of their folder sketch, verbatim. */
function docsExample(): { packageJson: string; source: string } {
  const source = /```js\n(\/\/ index\.mjs\n[\s\S]*?)```/.exec(docs)?.[1];
  const packageJson = /package\.json\s+(\{"name": "ferry-plugin-acme".*\})\n/.exec(docs)?.[1];
  if (source === undefined || packageJson === undefined) throw new Error("docs/plugins.md lost its example");
  return { packageJson, source };
}

function writePlugin(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  fixModes(dir);
}

const pkg = (main: string) => JSON.stringify({ name: "p", main, ferry: { api: "^1" } });

describe.each(["process", "inline"] as const)(
  "a plugin outside the project importing Ferry (%s)",
  (isolation) => {
    const base = pluginBase();
    const plugins = join(base.path, "plugins");
    let daemon: TestDaemon;
    const leftovers = () =>
      readdirSync(tmpdir()).filter(
        (name) => name.startsWith("ferry-plugin-") && !name.startsWith("ferry-plugin-sec"),
      );

    beforeAll(async () => {
      const { packageJson, source } = docsExample();
      expect(source).toContain('import { definePlugin } from "ferry/plugin";');
      writePlugin(join(plugins, "acme"), { "package.json": packageJson, "index.mjs": source });
      // The same with the library's name, and a handler that throws Ferry's own error class.
      writePlugin(join(plugins, "bare"), {
        "package.json": pkg("index.mjs"),
        "index.mjs": [
          'import { definePlugin, FerryError, PLUGIN_API_VERSION } from "ferry";',
          'export default definePlugin({ name: "bare", version: PLUGIN_API_VERSION, handlers: {',
          '  boom: () => { throw new FerryError("FERRY_INVALID_ARGUMENT", "no such thing"); },',
          "} });",
        ].join("\n"),
      });
      // Its own dependency in its own node_modules, beside the daemon's ferry.
      writePlugin(join(plugins, "deps"), {
        "package.json": pkg("index.mjs"),
        "index.mjs": [
          'import { definePlugin } from "ferry/plugin";',
          'import shout from "shout";',
          'export default definePlugin({ name: "deps", version: "1.0.0", handlers: { say: (p) => shout(p.word) } });',
        ].join("\n"),
        "node_modules/shout/package.json": JSON.stringify({ name: "shout", type: "module", main: "main.js" }),
        "node_modules/shout/main.js": 'export default (word) => word.toUpperCase() + "!";\n',
      });
      daemon = await startPluginDaemon([plugins], { FERRY_PLUGINS__ISOLATION: isolation });
    });

    afterAll(() => {
      daemon?.stop();
      base.remove();
    });

    it("loads all three", async () => {
      const listed = await pluginsByFolder(daemon);
      for (const name of ["acme", "bare", "deps"]) expect(listed[name]).toMatchObject({ state: "loaded" });
      expect(daemon.log()).toContain(`Loading plugin: acme v1.2.3 from ${join(plugins, "acme")}`);
    });

    it("runs the docs' example as written", async () => {
      expect(await runJob(daemon, "acme.greet", { name: "Ada" })).toMatchObject({
        state: "completed",
        value: { greeting: "hello Ada" },
      });
    });

    it("keeps the code of a FerryError thrown by a plugin that imported `ferry`", async () => {
      expect(await runJob(daemon, "bare.boom")).toMatchObject({
        state: "failed",
        errorInfo: { code: "FERRY_INVALID_ARGUMENT", message: "no such thing" },
      });
    });

    it("loads a plugin's own dependency from its own node_modules", async () => {
      expect(await runJob(daemon, "deps.say", { word: "hi" })).toMatchObject({
        state: "completed",
        value: "HI!",
      });
    });

    // Inline plugins need no such folder: only process isolation makes one.
    (isolation === "process" ? it : () => undefined)(
      "removes each plugin's private resolve folder when the daemon stops",
      async () => {
        // Other daemons (other test files) make their own: this one's mirror this test's plugins.
        const mine = leftovers().filter((name) => existsSync(join(tmpdir(), name, plugins)));
        expect(mine).toHaveLength(3);
        const exited = new Promise((resolve) => daemon.child.once("exit", resolve));
        daemon.child.kill("SIGTERM");
        await exited;
        expect(leftovers().filter((name) => mine.includes(name))).toEqual([]);
      },
    );
  },
);
