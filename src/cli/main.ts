#!/usr/bin/env node
import { ConnectError } from "@connectrpc/connect";
import { Command } from "commander";
import { FerryError } from "../core/errors.js";
import { accessCommands } from "./access-commands.js";
import { daemonCommand } from "./daemon.js";
import { jobCommands } from "./job-commands.js";
import { launchCommands } from "./launch-commands.js";
import { listCommand } from "./list-command.js";
import { migrateCommand } from "./migrate.js";
import { opsCommands } from "./ops-commands.js";
import { pluginsCommand } from "./plugins-command.js";
import { EXIT, explainFailure, remoteFromEnv } from "./remote.js";
import { scheduleCommand } from "./schedule-commands.js";
import { workerCommand } from "./worker.js";

const program = new Command()
  .name("ferry")
  .description("Secure background jobs: durable, retried, cancellable, with results you can collect.");

program.addCommand(daemonCommand());
program.addCommand(workerCommand());
program.addCommand(migrateCommand());
for (const command of [
  ...launchCommands(),
  ...jobCommands(),
  listCommand(),
  scheduleCommand(),
  ...opsCommands(),
  pluginsCommand(),
  ...accessCommands(),
])
  program.addCommand(command);
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
