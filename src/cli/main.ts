#!/usr/bin/env node
import { ConnectError } from "@connectrpc/connect";
import { Command } from "commander";
import { FerryError } from "../core/errors.js";
import { commandsFor } from "./commands.js";
import { EXIT, explainFailure, remoteFromEnv } from "./remote.js";

const program = new Command()
  .name("ferry")
  .description("Secure background jobs: durable, retried, cancellable, with results you can collect.");

for (const command of await commandsFor(process.argv[2])) program.addCommand(command);
usageErrorsExit2(program);

/** Commands added whole don't inherit these settings: a usage error anywhere exits 2, with help. */
function usageErrorsExit2(command: Command): void {
  command.showHelpAfterError().exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT.usage);
  });
  for (const sub of command.commands) usageErrorsExit2(sub);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConnectError) {
    const { message, exitCode } = explainFailure(error, remoteFromEnv().server);
    process.stderr.write(`ferry: ${message}\n`);
    process.exit(exitCode);
  }
  const message = error instanceof FerryError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(error instanceof FerryError && error.code === "FERRY_INVALID_ARGUMENT" ? EXIT.usage : 1);
}
