import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";

describe("lifecycle", () => {
  it("a process exits by itself soon after ferry.close(), with no timer or thread left holding it", async () => {
    const dir = tempDir();
    try {
      const fixture = new URL("./fixtures/close-exits.ts", import.meta.url).pathname;
      const began = Date.now();
      const child = spawn(process.execPath, ["--import", "tsx", fixture, join(dir.path, "c.db")], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
      });
      const code = await new Promise<number | null>((resolve) => {
        const guard = setTimeout(() => child.kill("SIGKILL"), 20_000);
        child.on("exit", (exitCode) => {
          clearTimeout(guard);
          resolve(exitCode);
        });
      });
      expect(out).toContain("closed");
      expect(code).toBe(0);
      // Startup through tsx takes a few seconds on a busy machine; the default 30 s grace must not show.
      expect(Date.now() - began).toBeLessThan(15_000);
    } finally {
      dir.remove();
    }
  });
});
