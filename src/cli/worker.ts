import { Command } from "commander";
import { Ferry } from "../api/ferry.js";
import { BUILTIN_HANDLERS } from "../handlers/builtin.js";
import { trapShutdownSignals } from "./shutdown-signals.js";

/** `ferry worker`: runs workers on the built-in handlers against a store, until SIGINT/SIGTERM. */
export function workerCommand(): Command {
  return new Command("worker")
    .description("run workers (no API) on the built-in handlers")
    .option("--store <url>", "store URL (default: FERRY_STORE, else sqlite:./ferry.db)")
    .option("--queues <list>", "comma-separated queues", "default")
    .option("--concurrency <n>", "jobs at once", "8")
    .option("--no-plugins", "load no plugins (plugins arrive with the daemon)")
    .action(async (options: { store?: string; queues: string; concurrency: string }) => {
      // Only the CLI traps signals: a library must not decide how its host shuts down.
      const signals = trapShutdownSignals((signal) =>
        process.stdout.write(`ferry worker: ${signal}, finishing running jobs (30s grace; again to force)\n`),
      );
      const ferry = await Ferry.open(options.store === undefined ? {} : { store: options.store });
      const worker = ferry.worker({
        queues: options.queues.split(",").map((q) => q.trim()),
        concurrency: Number(options.concurrency),
        handlers: BUILTIN_HANDLERS,
      });
      worker.on("error", ({ error, during }) =>
        process.stderr.write(`ferry worker: ${during}: ${String(error)}\n`),
      );
      await worker.start();
      const where =
        ferry.store.kind === "sqlite"
          ? (options.store ?? process.env.FERRY_STORE ?? "sqlite:./ferry.db")
          : ferry.store.kind;
      process.stdout.write(
        `ferry worker ${worker.name} running on ${where}, queues ${worker.queues.join(",")}, ` +
          `concurrency ${worker.concurrency}, handlers ${Object.keys(BUILTIN_HANDLERS).join(", ")}\n`,
      );
      signals.ready(() => ferry.close({ grace: "30s" }));
    });
}
