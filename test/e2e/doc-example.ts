/**
 * A doc's first `ts` example run as written, the way a project that installed Ferry runs it: in a
 * fresh folder whose node_modules/ferry is this package, so `ferry` and `ferry/client` resolve
 * through its exports map to the compiled dist/ (built by the global setup).
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { tempDir } from "../helpers/temp.js";

const root = new URL("../../", import.meta.url);

/**
 * Runs the first ```ts block of `doc` (a path from the repo root), once it imports from
 * `importing`, with `env` added to an environment that has none of the runner's FERRY_* variables.
 */
export function runDocExample(
  doc: string,
  importing: string,
  env: NodeJS.ProcessEnv = {},
): SpawnSyncReturns<string> {
  const text = readFileSync(new URL(doc, root), "utf8");
  const start = text.indexOf("```ts\n");
  const example = text.slice(start + 6, text.indexOf("```", start + 6));
  expect(example).toContain(`from "${importing}"`);
  const dir = tempDir();
  try {
    // .mts: the example is ESM (top-level await), as a "type": "module" project would run it.
    const file = join(dir.path, "example.mts");
    writeFileSync(file, example);
    mkdirSync(join(dir.path, "node_modules"));
    symlinkSync(new URL(".", root).pathname, join(dir.path, "node_modules", "ferry"));
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FERRY_")));
    // Run in the temp folder (an example may write ./ferry.db); tsx only strips the types.
    return spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), file], {
      cwd: dir.path,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...clean, ...env },
    });
  } finally {
    dir.remove();
  }
}
