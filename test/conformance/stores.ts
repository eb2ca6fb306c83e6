/**
 * The stores the conformance suite runs against. Each entry opens a fresh, isolated store (its
 * own file, schema or stream prefix) and cleans it up. Every backend must pass the same suite.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { Ferry, type OpenOptions } from "../../src/index.js";
import { tempDir } from "../helpers/temp.js";

export interface StoreUnderTest {
  readonly name: string;
  /** Opens a Ferry on a fresh store; `shared` opens a second Ferry on the same store. */
  fresh(
    options?: Omit<OpenOptions, "store">,
  ): Promise<{ ferry: Ferry; shared: () => Promise<Ferry>; cleanup: () => Promise<void> }>;
}

/** Ferrys on one store URL: the first, more on demand (`shared`), all closed before `remove`. */
async function openAll(url: string, options: Omit<OpenOptions, "store">, remove: () => Promise<void> | void) {
  const opened: Ferry[] = [];
  const open = async () => {
    const ferry = await Ferry.open({ ...options, store: url });
    opened.push(ferry);
    return ferry;
  };
  return {
    ferry: await open(),
    shared: open,
    cleanup: async () => {
      for (const f of opened) await f.close({ grace: 0 });
      await remove();
    },
  };
}

const sqlite: StoreUnderTest = {
  name: "sqlite",
  async fresh(options = {}) {
    const dir = tempDir("ferry-conf-");
    return openAll(`sqlite:${join(dir.path, "ferry.db")}`, options, dir.remove);
  },
};

/** The machine's PostgreSQL (FERRY_TEST_PG_URL overrides); each store gets a schema of its own. */
export const PG_URL = process.env.FERRY_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A fresh schema name and a way to drop it (tests never leave schemas behind). */
export function freshPgSchema(): { url: string; schema: string; drop: () => Promise<void> } {
  const schema = `ferry_t_${randomBytes(6).toString("hex")}`;
  return {
    schema,
    url: `${PG_URL}?schema=${schema}`,
    drop: async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

const postgres: StoreUnderTest = {
  name: "postgres",
  async fresh(options = {}) {
    const { url, drop } = freshPgSchema();
    return openAll(url, options, drop);
  },
};

/** The machine's NATS server (FERRY_TEST_NATS_URL overrides); each store gets a prefix of its own. */
export const NATS_URL = process.env.FERRY_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

/** A fresh prefix and a way to delete every stream and bucket made under it. */
export function freshNatsPrefix(): { url: string; prefix: string; drop: () => Promise<void> } {
  const prefix = `ft_${randomBytes(6).toString("hex")}`;
  return {
    prefix,
    url: `${NATS_URL}?prefix=${prefix}`,
    drop: async () => {
      const { connect } = await import("@nats-io/transport-node");
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const nc = await connect({ servers: new URL(NATS_URL).host });
      try {
        const jsm = await jetstreamManager(nc);
        const names: string[] = [];
        for await (const name of jsm.streams.names()) names.push(name);
        for (const name of names) {
          if (name.startsWith(`${prefix}_`) || name.startsWith(`KV_${prefix}_`))
            await jsm.streams.delete(name);
        }
      } finally {
        await nc.close();
      }
    },
  };
}

const nats: StoreUnderTest = {
  name: "nats",
  async fresh(options = {}) {
    // The NATS store is still behind its flag (docs/stores.md); the suite is what lifts it.
    const { url, drop } = freshNatsPrefix();
    return openAll(url, options, drop);
  },
};

/** FERRY_TEST_STORES=sqlite,postgres,nats narrows the list (all three by default). */
const wanted = process.env.FERRY_TEST_STORES?.split(",") ?? ["sqlite", "postgres", "nats"];
export const STORES: readonly StoreUnderTest[] = [sqlite, postgres, nats].filter((store) =>
  wanted.includes(store.name),
);

/**
 * Who makes the calls a test makes as a caller: the library itself, or the remote client through a
 * daemon served over the same store (setup.ts). Test names read "… on sqlite (remote client)".
 */
export interface Subject {
  readonly name: string;
  readonly store: StoreUnderTest;
  readonly via: "library" | "remote client";
}

const subject = (store: StoreUnderTest, via: Subject["via"]): Subject => ({
  name: `${store.name} (${via})`,
  store,
  via,
});

/** Every store through the library: for cases about the library's own side (workers, the store). */
export const LIBRARY_SUBJECTS: readonly Subject[] = STORES.map((store) => subject(store, "library"));

/** The client and the daemon hold no code of one store's: two stores show that, and keep the time down. */
const REMOTE_STORES = ["sqlite", "postgres"];

/** Every store through the library, and the SQL stores through the remote client too. */
export const SUBJECTS: readonly Subject[] = [
  ...LIBRARY_SUBJECTS,
  ...STORES.filter((store) => REMOTE_STORES.includes(store.name)).map((store) =>
    subject(store, "remote client"),
  ),
];
