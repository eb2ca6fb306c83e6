import { describe, expect, it } from "vitest";
import { COMMAND_GROUPS, commandsFor } from "../../src/cli/commands.js";

describe("the CLI's command groups", () => {
  it("each group defines exactly the commands it answers to", async () => {
    for (const group of COMMAND_GROUPS) {
      const names = (await group.load()).map((command) => command.name());
      expect(names).toEqual(group.names);
    }
  });

  it("loads one group for a command, and every command for help or a typo", async () => {
    expect((await commandsFor("launch")).map((c) => c.name())).toEqual(["launch", "submit", "run"]);
    const all = COMMAND_GROUPS.flatMap((group) => group.names);
    expect((await commandsFor("--help")).map((c) => c.name())).toEqual(all);
    expect((await commandsFor("lanch")).map((c) => c.name())).toEqual(all);
    expect(new Set(all).size).toBe(all.length);
  });
});
