import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";

const root = new URL("../../", import.meta.url);

describe("the README", () => {
  it("its 20-line example runs as written (with `ferry` resolved to this checkout)", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const start = readme.indexOf("```ts\n");
    const example = readme.slice(start + 6, readme.indexOf("```", start + 6));
    expect(example).toContain('from "ferry"');
    const dir = tempDir();
    try {
      // .mts: the example is ESM (top-level await), as a "type": "module" project would run it.
      const file = join(dir.path, "example.mts");
      const source = example.replace(
        'from "ferry"',
        `from ${JSON.stringify(new URL("src/index.ts", root).pathname)}`,
      );
      writeFileSync(file, source);
      // Run in the temp folder (the example writes ./ferry.db), with tsx found from this checkout.
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
