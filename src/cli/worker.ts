import { Command } from "commander";
import { addConfigFlags, type ConfigFlags, configLayer, integerFlag } from "./config-flags.js";

interface WorkerFlags extends ConfigFlags {
  queues?: string;
  concurrency?: string;
}

/**
 * `ferry worker`: workers without the API, set up as `ferry daemon` sets up its own (the same
 * config file, environment and handlers, plugins included), until SIGINT/SIGTERM. Its modules load
 * only when it runs (worker-run.ts).
 */
export function workerCommand(): Command {
  return addConfigFlags(
    new Command("worker").description("run workers (no API) on the built-in and plugin handlers"),
  )
    .option("--queues <list>", "comma-separated queues ([workers] queues)")
    .option("--concurrency <n>", "jobs at once ([workers] concurrency)")
    .action(async (flags: WorkerFlags) => {
      const { workerAction } = await import("./worker-run.js");
      await workerAction(flags.config, overridesOf(flags));
    });
}

function overridesOf(flags: WorkerFlags): Record<string, Record<string, unknown>> {
  const workers: Record<string, unknown> = {};
  if (flags.queues !== undefined) workers.queues = flags.queues.split(",").map((q) => q.trim());
  if (flags.concurrency !== undefined) workers.concurrency = integerFlag("--concurrency", flags.concurrency);
  return { ...configLayer(flags), ...(Object.keys(workers).length === 0 ? {} : { workers }) };
}
