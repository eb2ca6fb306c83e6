/**
 * docs/client.md's example runs as written against a daemon, importing `ferry/client` as an
 * installed package does: through the package's exports map, from the compiled dist/.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { tempDir } from "../helpers/temp.js";

const root = new URL("../../", import.meta.url);

describe("docs/client.md", () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon();
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("its first example runs as written with `ferry/client` from the package", () => {
    const doc = readFileSync(new URL("docs/client.md", root), "utf8");
    const start = doc.indexOf("```ts\n");
    const example = doc.slice(start + 6, doc.indexOf("```", start + 6));
    expect(example).toContain('from "ferry/client"');
    const dir = tempDir();
    try {
      const file = join(dir.path, "example.mts");
      writeFileSync(file, example);
      mkdirSync(join(dir.path, "node_modules"));
      symlinkSync(new URL(".", root).pathname, join(dir.path, "node_modules", "ferry"));
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FERRY_")));
      const run = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), file], {
        cwd: dir.path,
        encoding: "utf8",
        timeout: 60_000,
        env: { ...clean, FERRY_SERVER: daemon.url, FERRY_TOKEN: daemon.adminToken() },
      });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toContain("state completed\n");
      expect(run.stdout).toContain("completed a@example.com\n");
      expect(run.stdout).toContain('completed {"x":1}\n');
      expect(run.stdout).toContain("FERRY_NOT_FOUND\n");
    } finally {
      dir.remove();
    }
  }, 60_000);
});
