/** `ferry plugins`: the daemon's plugins with their state (admins and viewers). */
import { Command } from "commander";
import type { Plugin } from "../gen/ferry/v1/admin_pb.js";
import { printJson, printTable } from "./output.js";
import { remoteFromEnv } from "./remote.js";

export function pluginsCommand(): Command {
  return new Command("plugins")
    .description("the daemon's plugins: name, version, path, handlers, state")
    .option("--json", "one JSON object per plugin, one per line")
    .action(async (flags: { json?: boolean }) => {
      // The library has no call for plugins: the AdminService itself, on the client's connection.
      const { plugins } = await remoteFromEnv().connection.admin.listPlugins({});
      if (flags.json) {
        for (const plugin of plugins) printJson(pluginJson(plugin));
        return;
      }
      printTable(
        ["NAME", "VERSION", "STATE", "RESTARTS", "HANDLERS", "PATH", "REASON"],
        plugins.map((p) => [
          p.name,
          p.version,
          p.state,
          String(p.restarts),
          p.handlers.join(","),
          p.path,
          p.reason,
        ]),
      );
    });
}

function pluginJson(plugin: Plugin) {
  const { name, version, path, handlers, state, reason, restarts, isolation } = plugin;
  return { name, version, path, handlers, state, reason, restarts, isolation };
}
