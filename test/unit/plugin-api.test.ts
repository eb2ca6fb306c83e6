import { describe, expect, it } from "vitest";
import { definePlugin, PLUGIN_API_VERSION } from "../../src/index.js";
import { apiCompatible } from "../../src/plugins/api-range.js";

describe("the plugin API range check", () => {
  it("offers API 1.0.0", () => {
    expect(PLUGIN_API_VERSION).toBe("1.0.0");
  });

  it("accepts ^1, 1, 1.x and ^1.0", () => {
    for (const range of ["^1", "1", "1.x", "^1.0", " ^1 "]) expect(apiCompatible(range), range).toBe(true);
  });

  it("refuses other majors, newer minors, open ranges and non-strings", () => {
    for (const range of [
      "^2",
      "2",
      "2.x",
      "^1.1",
      "1.1",
      "^0.9",
      ">=1",
      "*",
      "",
      "^1.0.0-beta",
      "1 || 2",
      "~1",
      "x",
    ])
      expect(apiCompatible(range), range).toBe(false);
    for (const value of [1, null, undefined, ["^1"], { api: "^1" }]) expect(apiCompatible(value)).toBe(false);
  });
});

describe("definePlugin", () => {
  const greet = () => "hi";

  it("returns the definition, frozen", () => {
    const plugin = definePlugin({ name: "image-tools", version: "1.2.3", handlers: { greet } });
    expect(plugin).toEqual({ name: "image-tools", version: "1.2.3", handlers: { greet } });
    expect(Object.isFrozen(plugin.handlers)).toBe(true);
  });

  it("refuses names that are not lowercase identifiers", () => {
    for (const name of ["Acme", "1acme", "-acme", "ac.me", "ac_me", "", "a".repeat(65), "../x"])
      expect(() => definePlugin({ name, version: "1", handlers: { greet } }), name).toThrow(/plugin name/);
    expect(definePlugin({ name: "a".repeat(64), version: "1", handlers: { greet } }).name).toHaveLength(64);
  });

  it("refuses a missing version, no handlers, bad handler names and handlers that are not functions", () => {
    expect(() => definePlugin({ name: "acme", version: "", handlers: { greet } })).toThrow(/version/);
    expect(() => definePlugin({ name: "acme", version: "1", handlers: {} })).toThrow(/at least one handler/);
    expect(() => definePlugin({ name: "acme", version: "1", handlers: { "a.b": greet } })).toThrow(/"a.b"/);
    expect(() =>
      definePlugin({ name: "acme", version: "1", handlers: { greet: "code" as unknown as () => void } }),
    ).toThrow(/not a function/);
    expect(() => definePlugin(null as never)).toThrow(/definePlugin takes/);
  });
});
