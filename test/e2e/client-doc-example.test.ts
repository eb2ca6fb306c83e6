/**
 * docs/client.md's example runs as written against a daemon, importing `ferry/client` as an
 * installed package does: through the package's exports map, from the compiled dist/.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { runDocExample } from "./doc-example.js";

describe("docs/client.md", () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon();
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("its first example runs as written with `ferry/client` from the package", () => {
    const run = runDocExample("docs/client.md", "ferry/client", {
      FERRY_SERVER: daemon.url,
      FERRY_TOKEN: daemon.adminToken(),
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("state completed\n");
    expect(run.stdout).toContain("completed a@example.com\n");
    expect(run.stdout).toContain('completed {"x":1}\n');
    expect(run.stdout).toContain("FERRY_NOT_FOUND\n");
  }, 60_000);
});
