import { describe, expect, it } from "vitest";
import { runDocExample } from "./doc-example.js";

describe("the README", () => {
  it("its 20-line example runs as written, with `ferry` installed as this package (dist/)", () => {
    const run = runDocExample("README.md", "ferry");
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("completed");
    expect(run.stdout).toContain("a@example.com");
  });
});
