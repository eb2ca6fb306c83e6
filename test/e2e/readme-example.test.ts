import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";

const root = new URL("../../", import.meta.url);

describe("the README", () => {
  it("its 20-line example runs as written, with `ferry` installed as this package (dist/)", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const start = readme.indexOf("```ts\n");
    const example = readme.slice(start + 6, readme.indexOf("```", start + 6));
    expect(example).toContain('from "ferry"');
    const dir = tempDir();
    try {
      // .mts: the example is ESM (top-level await), as a "type": "module" project would run it.
      const file = join(dir.path, "example.mts");
      writeFileSync(file, example);
      // What `npm install ferry` gives a project: node_modules/ferry, resolved through its exports
      // map to the compiled dist/ (built by the global setup).
      mkdirSync(join(dir.path, "node_modules"));
      symlinkSync(new URL(".", root).pathname, join(dir.path, "node_modules", "ferry"));
      // Run in the temp folder (the example writes ./ferry.db); tsx only strips the example's types.
      const run = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), file], {
        cwd: dir.path,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toContain("completed");
      expect(run.stdout).toContain("a@example.com");
    } finally {
      dir.remove();
    }
  });
});
