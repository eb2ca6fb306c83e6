import { Command } from "commander";
import { addConfigFlags, configLayer, integerFlag } from "./config-flags.js";
// Type only, so erased: daemon-run.ts and the daemon behind it still load only when this command runs.
import type { DaemonFlags } from "./daemon-run.js";

/**
 * `ferry daemon`: the store, workers on the built-in and plugin handlers, and the job API on one port.
 *
 * Safe by default: loopback only unless told otherwise; off loopback it needs authentication, and
 * TLS or an explicit `--insecure-no-tls`. It refuses to start otherwise, with the
 * reason, and exits 2. The daemon's modules load only when this command runs (daemon-run.ts), so
 * the other commands start without them.
 */
export function daemonCommand(): Command {
  return addConfigFlags(
    new Command("daemon").description(
      "serve the job API (gRPC, gRPC-Web, Connect JSON) on one port, with workers",
    ),
  )
    .option("--bind <address>", "address to listen on ([server] bind_address)")
    .option("--port <n>", "port to listen on, 0 for any free one ([server] port)")
    .option("--print-config", "print the effective config (secrets hidden) and exit")
    .option(
      "--insecure-no-tls",
      "allow a non-loopback address without TLS (tokens cross the network in clear)",
    )
    .action(async (flags: DaemonFlags) => {
      const { daemonAction } = await import("./daemon-run.js");
      await daemonAction(flags, overridesOf(flags));
    });
}

function overridesOf(flags: DaemonFlags): Record<string, Record<string, unknown>> {
  const server: Record<string, unknown> = {};
  if (flags.bind !== undefined) server.bind_address = flags.bind;
  if (flags.port !== undefined) server.port = integerFlag("--port", flags.port);
  return { ...configLayer(flags), ...(Object.keys(server).length === 0 ? {} : { server }) };
}
