import { invalidArgument } from "../core/errors.js";
import type { Store } from "./store.js";

export interface StoreOpenOptions {
  /** SQLite: synchronous=FULL (survives power loss). */
  readonly durable?: boolean;
}

/**
 * Opens a store from its URL: `sqlite:./ferry.db`, `sqlite::memory:`, `postgres://…[?schema=name]`, `nats://…`.
 * Backends load lazily, so an install that uses one never loads the others' drivers.
 */
export async function openStore(url: string, options: StoreOpenOptions = {}): Promise<Store> {
  if (typeof url !== "string" || url.length === 0) throw invalidArgument("store URL is empty");
  if (url.startsWith("sqlite:")) {
    let path = url.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2);
    if (path.length === 0) throw invalidArgument("sqlite store URL needs a path, e.g. sqlite:./ferry.db");
    const { SqliteStore } = await import("./sqlite/sqlite-store.js");
    const store = new SqliteStore(path, options.durable === undefined ? {} : { durable: options.durable });
    return store;
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { PostgresStore } = await import("./postgres/postgres-store.js");
    return new PostgresStore(url);
  }
  if (url.startsWith("nats://") || url.startsWith("tls://")) {
    const { openNatsStore } = await import("./nats/open.js");
    return openNatsStore(url);
  }
  throw invalidArgument("store URL must start with sqlite:, postgres:// or nats://");
}
