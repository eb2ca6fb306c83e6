import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/index.js";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("documentation", () => {
  it("documents every error code under its own heading", () => {
    const headings = new Set(
      read("docs/errors.md")
        .split("\n")
        .filter((line) => line.startsWith("## "))
        .map((line) => line.slice(3).trim()),
    );
    for (const code of Object.values(ErrorCode))
      expect(headings, `docs/errors.md lacks ## ${code}`).toContain(code);
  });

  it("keeps the README's two commands first", () => {
    const readme = read("README.md");
    const firstBlock = readme.slice(
      readme.indexOf("```sh"),
      readme.indexOf("```", readme.indexOf("```sh") + 5),
    );
    expect(firstBlock).toContain("npm start");
    expect(firstBlock).toContain("npm test");
  });
});
