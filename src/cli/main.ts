#!/usr/bin/env node
import { Command } from "commander";
import { FerryError } from "../core/errors.js";
import { daemonCommand } from "./daemon.js";
import { migrateCommand } from "./migrate.js";
import { workerCommand } from "./worker.js";

/** Exit codes from the SPEC: 0 ok, 1 job failed or cancelled, 2 usage, 3 not found/denied, 4 server unreachable. */
export const EXIT = { ok: 0, jobFailed: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

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

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const message = error instanceof FerryError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(error instanceof FerryError && error.code === "FERRY_INVALID_ARGUMENT" ? EXIT.usage : 1);
}
