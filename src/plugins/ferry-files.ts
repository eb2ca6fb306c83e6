/**
 * Where Ferry itself lies on disk: the one place outside its own folder a plugin may load code
 * from (besides `node:` built-ins), and what a plugin process must be able to read to start.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The plugin host script each process-isolated plugin runs in. */
export const HOST_SCRIPT = realpathSync(fileURLToPath(new URL("./plugin-host.mjs", import.meta.url)));

/** Ferry's package folder: the nearest folder above this module whose package.json is `ferry`'s. */
export const FERRY_ROOT = findRoot(dirname(HOST_SCRIPT));

/** Ferry's own code: what `import "ferry"` resolves into, and the host's own files. */
export const FERRY_CODE: readonly string[] = ["package.json", "src", "dist", "bin"]
  .map((name) => join(FERRY_ROOT, name))
  .filter((path) => existsSync(path));

/**
 * The compiled files a plugin process gets for `import "ferry"` and `import "ferry/plugin"`
 * (resolve-root.ts): beside this module when the daemon runs from dist/, else (the daemon run from
 * its TypeScript sources, as in tests) the checkout's dist/, which a plain Node process can load.
 */
export const FERRY_ENTRIES: Readonly<Record<"." | "./plugin", string>> = (() => {
  const beside = join(dirname(HOST_SCRIPT), "..");
  const src = existsSync(join(beside, "index.js")) ? beside : join(FERRY_ROOT, "dist", "src");
  return { ".": join(src, "index.js"), "./plugin": join(src, "plugin.js") };
})();

/**
 * Everything a plugin process may read of Ferry: its code and the node_modules folders its own
 * imports resolve from (code the daemon already runs). Nothing else of its folder: a daemon started
 * in its checkout keeps its store and admin token there.
 */
export function ferryReadable(): string[] {
  const modules: string[] = [];
  for (let dir = FERRY_ROOT; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules");
    // Both names: Node reads a package through the path it looked up, not the link's target.
    if (existsSync(candidate)) modules.push(candidate, realpathSync(candidate));
    if (dirname(dir) === dir) break;
  }
  return [...new Set([...FERRY_CODE, ...modules])];
}

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown };
      if (pkg.name === "ferry") return dir;
    } catch {
      // No package.json here, or not JSON: look further up.
    }
    if (dirname(dir) === dir) return start;
  }
}
