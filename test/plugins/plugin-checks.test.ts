/**
 * The file checks and discovery, on real folders: world-writable or foreign-owned paths,
 * symlinks that leave the plugin folder, package.json and module rules. No plugin code runs.
 */
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkPluginFile } from "../../src/plugins/checks.js";
import { discoverPlugins, examineFolder, type Found } from "../../src/plugins/discovery.js";
import { fileRules } from "../../src/plugins/file-rules.js";
import { daemonUser } from "../../src/plugins/plugin-user.js";
import { copyPlugins } from "../helpers/plugins.js";

const root = process.getuid?.() === 0;
const rules = fileRules(daemonUser(), daemonUser());
const removers: (() => void)[] = [];
afterEach(() => {
  for (const remove of removers.splice(0)) remove();
});

function plugins(names: string[] = ["acme"]) {
  const copy = copyPlugins(names);
  removers.push(copy.dir.remove);
  return copy.plugins;
}

const reasons = (found: Found[]) =>
  found.map((item) => (item.kind === "refused" ? `${item.name}: ${item.reason}` : `${item.folder}: ok`));

describe("plugin discovery and file checks", () => {
  it("finds a good plugin and its module, and refuses an incompatible api without importing it", async () => {
    const dir = plugins(["acme", "future"]);
    const found = await discoverPlugins([dir], () => undefined, rules);
    expect(found).toEqual([
      { kind: "candidate", folder: join(dir, "acme"), module: join(dir, "acme", "index.mjs") },
      {
        kind: "refused",
        name: "future",
        path: join(dir, "future"),
        reason: 'it needs plugin API "^2", this daemon offers 1.0.0',
      },
    ]);
  });

  it("reports a missing plugin dir instead of failing", async () => {
    const missing: string[] = [];
    const dir = plugins();
    expect(await discoverPlugins([join(dir, "nope")], (d) => missing.push(d), rules)).toEqual([]);
    expect(missing).toEqual([join(dir, "nope")]);
  });

  it("refuses a world-writable plugin dir, plugin folder, package.json or module", async () => {
    const dir = plugins();
    chmodSync(dir, 0o777);
    expect(reasons(await discoverPlugins([dir], () => undefined, rules))).toEqual([
      `plugins: ${dir} is world-writable (mode 777)`,
    ]);
    chmodSync(dir, 0o755);
    for (const path of ["", "package.json", "index.mjs"]) {
      const target = join(dir, "acme", path);
      const mode = path === "" ? 0o755 : 0o644;
      chmodSync(target, mode | 0o002);
      const found = await examineFolder(join(dir, "acme"), rules);
      expect(found, path).toMatchObject({
        kind: "refused",
        reason: expect.stringContaining(`${target} is world-writable`),
      });
      chmodSync(target, mode);
    }
    expect((await examineFolder(join(dir, "acme"), rules)).kind).toBe("candidate");
  });

  it.skipIf(!root)("refuses a plugin folder or module owned by another user (as root)", async () => {
    const dir = plugins();
    for (const path of ["", "index.mjs"]) {
      const target = join(dir, "acme", path);
      chownSync(target, 65534, 65534);
      expect(await examineFolder(join(dir, "acme"), rules), path).toMatchObject({
        kind: "refused",
        reason: `${target} is owned by uid 65534, neither root nor this user (0)`,
      });
      chownSync(target, 0, 0);
    }
  });

  it("refuses symlinks that leave the plugin folder and follows those that stay inside", async () => {
    const dir = plugins();
    const folder = join(dir, "acme");
    writeFileSync(join(dir, "outside.mjs"), "export default {};\n", { mode: 0o644 });
    rmSync(join(folder, "index.mjs"));
    symlinkSync(join(dir, "outside.mjs"), join(folder, "index.mjs"));
    expect(await checkPluginFile(folder, "index.mjs", rules)).toEqual({
      ok: false,
      reason: `${join(folder, "index.mjs")} is a symlink that leaves the plugin folder`,
    });
    rmSync(join(folder, "index.mjs"));
    mkdirSync(join(folder, "lib"), { mode: 0o755 });
    writeFileSync(join(folder, "lib", "real.mjs"), "export default {};\n", { mode: 0o644 });
    symlinkSync("lib/real.mjs", join(folder, "index.mjs"));
    expect(await checkPluginFile(folder, "index.mjs", rules)).toEqual({
      ok: true,
      path: join(folder, "lib", "real.mjs"),
    });
    // A symlinked plugin folder is refused outright.
    symlinkSync(folder, join(dir, "linked"));
    expect(await examineFolder(join(dir, "linked"), rules)).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/is a symlink/),
    });
  });

  it("refuses a main outside the folder, a world-writable folder on the way, and bad package.json", async () => {
    const dir = plugins();
    const folder = join(dir, "acme");
    const pkg = (value: unknown) => writeFileSync(join(folder, "package.json"), JSON.stringify(value));
    pkg({ main: "../../etc/passwd", ferry: { api: "^1" } });
    expect(await examineFolder(folder, rules)).toMatchObject({
      reason: expect.stringMatching(/outside the plugin folder/),
    });
    mkdirSync(join(folder, "lib"), { mode: 0o755 });
    chmodSync(join(folder, "lib"), 0o777);
    writeFileSync(join(folder, "lib", "index.mjs"), "export default {};\n", { mode: 0o644 });
    pkg({ main: "lib/index.mjs", ferry: { api: "^1" } });
    expect(await examineFolder(folder, rules)).toMatchObject({
      reason: `${join(folder, "lib")} is world-writable (mode 777)`,
    });
    chmodSync(join(folder, "lib"), 0o755);
    pkg({ name: "x" });
    expect(await examineFolder(folder, rules)).toMatchObject({
      reason: expect.stringMatching(/has no "ferry"/),
    });
    writeFileSync(join(folder, "package.json"), '{"__proto__": {"x": 1}, "ferry": {"api": "^1"}}');
    expect(await examineFolder(folder, rules)).toMatchObject({
      reason: expect.stringMatching(/not valid JSON/),
    });
    pkg({ ferry: { api: "^1" } });
    rmSync(join(folder, "index.mjs"));
    expect(await examineFolder(folder, rules)).toMatchObject({
      reason: expect.stringMatching(/no index\.js or index\.mjs/),
    });
  });
});
