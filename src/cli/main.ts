#!/usr/bin/env node
import { Command } from "commander";
import { commandsFor } from "./commands.js";

/** Exit code 2, a usage error (remote.ts holds the SPEC's codes; loaded only when a call fails). */
const USAGE = 2;

const program = new Command()
  .name("ferry")
  .description("Secure background jobs: durable, retried, cancellable, with results you can collect.");

for (const command of await commandsFor(process.argv[2])) program.addCommand(command);
usageErrorsExit2(program);

/** Commands added whole don't inherit these settings: a usage error anywhere exits 2, with help. */
function usageErrorsExit2(command: Command): void {
  command.showHelpAfterError().exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : USAGE);
  });
  for (const sub of command.commands) usageErrorsExit2(sub);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const { explainFailure } = await import("./remote.js");
  const { resolveConnectOptions } = await import("../client/options.js");
  const { message, exitCode } = explainFailure(error, () => resolveConnectOptions().server);
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(exitCode);
}
