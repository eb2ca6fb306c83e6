/**
 * groupRate keeps one count per group that started on a rate-limited queue. Once its window has
 * ended the count means nothing, and pruning (the maintenance's `pruneExpired`) deletes it, so a
 * store with many short-lived groups does not keep a row or key per group for ever.
 */
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { Ferry } from "../../src/index.js";
import { listKeys } from "../../src/store/nats/kv-keys.js";
import { natsNames } from "../../src/store/nats/names.js";
import { freshNatsPrefix, freshPgSchema, NATS_URL, PG_URL } from "../conformance/stores.js";
import { sleep, tempDir } from "../helpers/temp.js";

interface Case {
  readonly name: string;
  /** The store's URL, how many group counts it holds, how to make its next prune a full sweep. */
  open(): Promise<{ url: string; counts: () => Promise<number>; sweepDue: () => Promise<void> }>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const CASES: Case[] = [
  {
    name: "sqlite",
    async open() {
      const dir = tempDir();
      cleanups.push(() => dir.remove());
      const file = join(dir.path, "ferry.db");
      const counts = async () => {
        const db = new Database(file, { readonly: true });
        try {
          return (db.prepare("SELECT count(*) AS n FROM group_rates").get() as { n: number }).n;
        } finally {
          db.close();
        }
      };
      return { url: `sqlite:${file}`, counts, sweepDue: async () => undefined };
    },
  },
  {
    name: "postgres",
    async open() {
      const { url, schema, drop } = freshPgSchema();
      cleanups.push(drop);
      const counts = async () => {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        try {
          return (await client.query(`SELECT count(*)::int AS n FROM ${schema}.group_rates`)).rows[0]
            .n as number;
        } finally {
          await client.end();
        }
      };
      return { url, counts, sweepDue: async () => undefined };
    },
  },
  {
    name: "nats",
    async open() {
      const { url, prefix, drop } = freshNatsPrefix();
      cleanups.push(drop);
      const nc = await connect({ servers: new URL(NATS_URL).host });
      cleanups.push(() => nc.close());
      const meta = () => new Kvm(nc).open(natsNames(prefix).metaBucket);
      return {
        url,
        counts: async () => (await listKeys(await meta(), "grate.>")).length,
        // The full sweep, where NATS prunes these keys, runs hourly: move its clock back an hour.
        sweepDue: async () => {
          await (await meta()).put("sweep.prune", JSON.stringify({ at: Date.now() - 3_700_000 }));
        },
      };
    },
  },
];

describe.each(CASES)("groupRate counts on $name", (store) => {
  it("are deleted by pruning once their window has ended, and kept while it is open", async () => {
    const { url, counts, sweepDue } = await store.open();
    // "short" windows end 200 ms after they open; a "long" one is open all day.
    const queues = { short: { groupRate: "1/200ms" }, long: { groupRate: "1/d" } };
    const ferry = await Ferry.open({ store: url, queues });
    cleanups.push(() => ferry.close({ grace: 0 }));
    // No maintenance in the worker: the test decides when pruning runs.
    const worker = ferry.worker({
      queues: ["short", "long"],
      maintenance: false,
      pollInterval: "20ms",
      handlers: { "demo.rated": async () => "ok" },
    });
    await worker.start();
    const handles = await ferry.launchMany(
      ["a", "b", "c"].map((group) => ({ handler: "demo.rated", options: { queue: "short", group } })),
    );
    handles.push(await ferry.launch("demo.rated", null, { queue: "long", group: "a" }));
    await ferry.drain(handles, { timeout: "20s" });
    expect(await counts()).toBe(4);
    await sleep(450);
    // From a process of its own: a SQL store prunes these at most once a minute per process.
    const other = await Ferry.open({ store: url });
    cleanups.push(() => other.close());
    await sweepDue();
    await other.store.pruneExpired(1_000);
    expect(await counts()).toBe(1);
  });
});
