/**
 * The daemon acts through the library's API, never the store behind `Ferry.store`: every access
 * rule it keeps is then one the API keeps (owner scope, one read per call). The only `.store`
 * the daemon may name is its config's `[store]` section.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const DAEMON = fileURLToPath(new URL("../../src/daemon/", import.meta.url));

/** `<object>.store` where the object is the daemon's config (a section of ferry.toml), not a Ferry. */
const CONFIG_STORE = /^(config|layer)\??\.store$/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

describe("the daemon", () => {
  it("reaches no store through a Ferry: only its config's [store] section is named .store", () => {
    const uses: string[] = [];
    for (const file of sources(DAEMON)) {
      for (const [n, line] of readFileSync(file, "utf8").split("\n").entries()) {
        // An object before the dot (not a spread's `...store`), then `.store` as a whole name.
        for (const match of line.matchAll(/[\w$)\]]+\??\.store\b/g)) {
          if (!CONFIG_STORE.test(match[0]))
            uses.push(`${file.slice(DAEMON.length)}:${n + 1}: ${line.trim()}`);
        }
      }
    }
    expect(uses).toEqual([]);
  });

  it("opens access control on the store's access document alone", () => {
    const setup = readFileSync(join(DAEMON, "worker-setup.ts"), "utf8");
    expect(setup).toContain("AccessControl.open(ferry.accessStore())");
  });
});
