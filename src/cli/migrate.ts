import { Command } from "commander";
import { DEFAULT_STORE_URL } from "../core/defaults.js";

/** `ferry migrate`: create or upgrade the store's schema, then exit. */
export function migrateCommand(): Command {
  return new Command("migrate")
    .description("create or upgrade the store's schema")
    .option("--store <url>", `store URL (default: FERRY_STORE, else ${DEFAULT_STORE_URL})`)
    .action(async (options: { store?: string }) => {
      // The store drivers load only for this command.
      const { openStore } = await import("../store/open.js");
      const store = await openStore(options.store ?? process.env.FERRY_STORE ?? DEFAULT_STORE_URL);
      try {
        const version = await store.migrate();
        process.stdout.write(`${store.kind} store at schema version ${version}\n`);
      } finally {
        await store.close();
      }
    });
}
