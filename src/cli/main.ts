#!/usr/bin/env node
import { ConnectError } from "@connectrpc/connect";
import { Command } from "commander";
import { FerryError } from "../core/errors.js";
import { accessCommands } from "./access-commands.js";
import { daemonCommand } from "./daemon.js";
import { migrateCommand } from "./migrate.js";
import { EXIT, explainFailure, remoteFromEnv } from "./remote.js";
import { workerCommand } from "./worker.js";

const program = new Command()
  .name("ferry")
  .description("Secure background jobs: durable, retried, cancellable, with results you can collect.")
  .showHelpAfterError()
  .exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT.usage);
  });

program.addCommand(daemonCommand());
program.addCommand(workerCommand());
program.addCommand(migrateCommand());
for (const command of accessCommands()) program.addCommand(command);

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
