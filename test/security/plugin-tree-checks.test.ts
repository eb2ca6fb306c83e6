/**
 * Every file a plugin can load is checked before any of it runs, and nothing outside its folder is
 * loaded: a helper module that is a symlink out of the folder, a world-writable helper or
 * subfolder, a helper group-writable by others, a node_modules file owned by another user, and a
 * plugin dir under a world-writable parent are refused (a root-owned sticky parent like /tmp is
 * fine); a module importing or requiring a file outside its folder is refused when it loads, in
 * both isolations. Each refused plugin is listed with its reason and the daemon goes on.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Listed, pluginDaemonSuite, pluginsByFolder, runJob } from "./plugin-daemon.js";

/** A group id /etc/group does not list: nothing says who is in it, so it counts as others'. */
function unlistedGid(): number {
  const listed = new Set(
    readFileSync("/etc/group", "utf8")
      .split("\n")
      .map((line) => Number(line.split(":")[2])),
  );
  let gid = 54_321;
  while (listed.has(gid)) gid++;
  return gid;
}

function write(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

/** A plugin folder named `name` whose handler `name.hello` answers what `index` exports as `value`. */
function plugin(dir: string, name: string, index: string, main = "index.mjs"): string {
  const folder = join(dir, name);
  mkdirSync(folder, { mode: 0o755 });
  chmodSync(folder, 0o755);
  write(join(folder, "package.json"), JSON.stringify({ main, ferry: { api: "^1" } }));
  write(join(folder, main), index);
  return folder;
}

const exporting = (name: string, imports: string, value: string) =>
  `${imports}\nexport default { name: ${JSON.stringify(name)}, version: "1.0.0", handlers: { hello: () => ${value} } };\n`;

function buildPlugins(base: string): { plugins: string; open: string; sticky: string } {
  const shared = join(base, "shared");
  write(join(shared, "helper.mjs"), 'export const helper = "from outside";\n');
  write(join(shared, "helper.cjs"), 'module.exports = "from outside";\n');

  const plugins = join(base, "plugins");
  mkdirSync(plugins, { mode: 0o755 });
  // Allowed: its own node_modules, a helper in a subfolder, a symlink that stays inside, and a file
  // group-writable by root's own group.
  const good = plugin(
    plugins,
    "good",
    exporting(
      "good",
      'import dep from "dep";\nimport { helper } from "./lib/alias.mjs";',
      'dep + " and " + helper',
    ),
  );
  write(join(good, "node_modules", "dep", "package.json"), '{"name":"dep","type":"module","main":"main.js"}');
  write(join(good, "node_modules", "dep", "main.js"), 'export default "its own dependency";\n');
  write(join(good, "lib", "helper.mjs"), 'export const helper = "its own helper";\n', 0o664);
  chownSync(join(good, "lib", "helper.mjs"), 0, 0);
  symlinkSync("helper.mjs", join(good, "lib", "alias.mjs"));

  const linked = plugin(
    plugins,
    "helper-link",
    exporting("helper-link", 'import { helper } from "./helper.mjs";', "helper"),
  );
  symlinkSync(join(shared, "helper.mjs"), join(linked, "helper.mjs"));

  const open = plugin(
    plugins,
    "helper-open",
    exporting("helper-open", 'import { helper } from "./helper.mjs";', "helper"),
  );
  write(join(open, "helper.mjs"), 'export const helper = "anyone may change me";\n', 0o666);

  const sub = plugin(
    plugins,
    "sub-open",
    exporting("sub-open", 'import { helper } from "./lib/helper.mjs";', "helper"),
  );
  write(join(sub, "lib", "helper.mjs"), 'export const helper = "in an open folder";\n');
  chmodSync(join(sub, "lib"), 0o777);

  const group = plugin(
    plugins,
    "group-open",
    exporting("group-open", 'import { helper } from "./helper.mjs";', "helper"),
  );
  write(join(group, "helper.mjs"), 'export const helper = "a group may change me";\n', 0o664);
  chownSync(join(group, "helper.mjs"), 0, unlistedGid());

  const foreign = plugin(
    plugins,
    "foreign-module",
    exporting("foreign-module", 'import dep from "dep";', "dep"),
  );
  write(
    join(foreign, "node_modules", "dep", "package.json"),
    '{"name":"dep","type":"module","main":"main.js"}',
  );
  write(join(foreign, "node_modules", "dep", "main.js"), 'export default "someone else\'s";\n');
  chownSync(join(foreign, "node_modules", "dep", "main.js"), 65_534, 65_534);

  plugin(
    plugins,
    "importer",
    exporting("importer", 'import { helper } from "../../shared/helper.mjs";', "helper"),
  );
  plugin(
    plugins,
    "requirer",
    'module.exports = { name: "requirer", version: "1.0.0", handlers: { hello: () => require("../../shared/helper.cjs") } };\n' +
      'require("../../shared/helper.cjs");\n',
    "index.cjs",
  );

  // The same good plugin under a world-writable parent (refused), and under a root-owned sticky one.
  const openParent = join(base, "open");
  mkdirSync(join(openParent, "plugins"), { recursive: true, mode: 0o755 });
  chmodSync(openParent, 0o777);
  plugin(join(openParent, "plugins"), "under-open", exporting("under-open", "", '"loaded"'));
  const stickyParent = join(base, "sticky");
  mkdirSync(join(stickyParent, "plugins"), { recursive: true, mode: 0o755 });
  chmodSync(stickyParent, 0o1777);
  plugin(join(stickyParent, "plugins"), "under-sticky", exporting("under-sticky", "", '"loaded"'));
  return { plugins, open: join(openParent, "plugins"), sticky: join(stickyParent, "plugins") };
}

describe.each(["process", "inline"] as const)("plugin trees with isolation = %s", (isolation) => {
  let dirs: ReturnType<typeof buildPlugins>;
  let listed: Record<string, Listed>;
  const suite = pluginDaemonSuite({
    env: { FERRY_PLUGINS__ISOLATION: isolation },
    prepare: (base) => {
      expect(process.getuid?.()).toBe(0);
      dirs = buildPlugins(base);
      return { dirs: [dirs.plugins, dirs.open, dirs.sticky] };
    },
    started: async (daemon) => {
      listed = await pluginsByFolder(daemon);
    },
  });

  const reasonOf = (folder: string) => {
    expect(listed[folder]?.state, folder).toBe("refused");
    return listed[folder]?.reason ?? "";
  };

  it("loads a plugin whose files are all its own, and runs it", async () => {
    expect(listed.good?.state).toBe("loaded");
    expect(await runJob(suite.daemon, "good.hello")).toMatchObject({
      state: "completed",
      value: "its own dependency and its own helper",
    });
  });

  it("refuses a helper that is a symlink out of the folder", () => {
    const link = join(dirs.plugins, "helper-link", "helper.mjs");
    expect(reasonOf("helper-link")).toBe(
      `${link} is a symlink that leaves the plugin folder (to ${join(suite.base, "shared", "helper.mjs")})`,
    );
  });

  it("refuses a world-writable helper or subfolder, and a helper group-writable by others", () => {
    expect(reasonOf("helper-open")).toBe(
      `${join(dirs.plugins, "helper-open", "helper.mjs")} is world-writable (mode 666)`,
    );
    expect(reasonOf("sub-open")).toBe(
      `${join(dirs.plugins, "sub-open", "lib")} is world-writable (mode 777)`,
    );
    expect(reasonOf("group-open")).toMatch(
      /group-open\/helper\.mjs is group-writable \(mode 664\) and its group \d+ has other members$/,
    );
  });

  it("refuses a node_modules file owned by another user", () => {
    expect(reasonOf("foreign-module")).toBe(
      `${join(dirs.plugins, "foreign-module", "node_modules", "dep", "main.js")} is owned by uid 65534, neither root nor this user (0)`,
    );
  });

  it("refuses a module that imports or requires a file outside its folder, when it loads", () => {
    const outside = join(suite.base, "shared");
    expect(reasonOf("importer")).toContain(join(outside, "helper.mjs"));
    expect(reasonOf("importer")).toMatch(/outside its (plugin )?folder/);
    expect(reasonOf("requirer")).toContain(join(outside, "helper.cjs"));
    expect(reasonOf("requirer")).toMatch(/outside its (plugin )?folder/);
  });

  it("refuses a plugin dir under a world-writable parent, and accepts a root-owned sticky one", async () => {
    const refusedDirs = Object.values(listed).filter((p) => p.path === dirs.open);
    expect(refusedDirs).toEqual([
      expect.objectContaining({
        state: "refused",
        reason: `${join(suite.base, "open")} is world-writable (mode 777)`,
      }),
    ]);
    expect(listed["under-open"]).toBeUndefined();
    expect(listed["under-sticky"]?.state).toBe("loaded");
    expect(await runJob(suite.daemon, "under-sticky.hello")).toMatchObject({
      state: "completed",
      value: "loaded",
    });
  });

  it("logs each refusal with its reason and goes on serving", async () => {
    const refusals = suite.daemon
      .log()
      .split("\n")
      .filter((line) => line.includes('"refused plugin '));
    expect(refusals).toHaveLength(8);
    expect((await fetch(`${suite.daemon.url}/healthz`)).status).toBe(200);
  });
});
