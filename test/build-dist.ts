/**
 * Vitest global setup: the tests that spawn bin/ferry.js run the compiled dist/, so build it first
 * when any source is newer than it. A stale dist would silently test old code.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../", import.meta.url).pathname;

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newest(join(path, entry))));
}

export default function setup(): void {
  const built = join(root, "dist/src/cli/main.js");
  const sources = Math.max(
    newest(join(root, "src")),
    ...["package.json", "tsconfig.json", "tsconfig.build.json"].map((f) => newest(join(root, f))),
  );
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return;
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
}
