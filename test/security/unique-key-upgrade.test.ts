/**
 * A store written before unique keys were scoped to their owner (schema 3) upgrades in place: its
 * jobs stay readable through their handles, each unfinished job keeps its key in its owner's
 * scope, and another owner's launch with that key is no longer handed the old job.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { hashCookie, newCookie, newJobId } from "../../src/core/ids.js";
import { Ferry } from "../../src/index.js";
import { MIGRATIONS as PG_MIGRATIONS } from "../../src/store/postgres/schema.js";
import { MIGRATIONS as SQLITE_MIGRATIONS } from "../../src/store/sqlite/schema.js";
import { freshNatsPrefix, freshPgSchema, NATS_URL, PG_URL } from "../conformance/stores.js";
import { tempDir } from "../helpers/temp.js";

/** A job as schema 3 stored it: the columns without defaults, and its key and owner. */
interface OldJob {
  readonly id: string;
  readonly cookie: string;
  readonly owner: string | null;
  readonly uniqueKey: string;
}

const oldJob = (owner: string | null, uniqueKey: string): OldJob => ({
  id: newJobId(),
  cookie: newCookie(),
  owner,
  uniqueKey,
});

/** Two unfinished jobs of schema 3: alice's with key "welcome", and one without an owner with key "report". */
const OLD_JOBS = [oldJob("alice", "welcome"), oldJob(null, "report")];

const INSERT = `INSERT INTO jobs (id, handler, queue, state, owner, unique_key, serializer, payload, cookie_hash,
    max_attempts, launched_at, run_at)
  VALUES ($1, 'demo.job', 'parked', 'queued', $2, $3, 'json', $4, $5, 3, $6, $6)`;

const STORES = [
  {
    name: "sqlite",
    /** A schema-3 database file holding OLD_JOBS; answers its store URL. */
    async oldStore(cleanups: (() => unknown)[]): Promise<string> {
      const dir = tempDir("ferry-upgrade-");
      cleanups.push(dir.remove);
      const path = join(dir.path, "ferry.db");
      const db = new Database(path);
      db.exec("CREATE TABLE ferry_schema (version INTEGER NOT NULL); INSERT INTO ferry_schema VALUES (3);");
      for (const step of SQLITE_MIGRATIONS.slice(0, 3)) db.exec(step);
      const insert = db.prepare(INSERT.replace(/\$\d/g, "?"));
      for (const job of OLD_JOBS) {
        insert.run(
          job.id,
          job.owner,
          job.uniqueKey,
          Buffer.from("null"),
          hashCookie(job.cookie),
          Date.now(),
          Date.now(),
        );
      }
      db.close();
      return `sqlite:${path}`;
    },
  },
  {
    name: "postgres",
    async oldStore(cleanups: (() => unknown)[]): Promise<string> {
      const { url, schema, drop } = freshPgSchema();
      cleanups.push(drop);
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`CREATE SCHEMA ${schema}`);
        await client.query(`CREATE TABLE ${schema}.schema_version (version integer NOT NULL)`);
        await client.query(`INSERT INTO ${schema}.schema_version VALUES (3)`);
        for (const step of PG_MIGRATIONS.slice(0, 3)) await client.query(step(schema));
        for (const job of OLD_JOBS) {
          await client.query(INSERT.replace("INTO jobs", `INTO ${schema}.jobs`), [
            job.id,
            job.owner,
            job.uniqueKey,
            Buffer.from("null"),
            Buffer.from(hashCookie(job.cookie)),
            Date.now(),
          ]);
        }
      } finally {
        await client.end();
      }
      return url;
    },
  },
];

describe.each(STORES)("upgrading a schema-3 $name store", (store) => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("keeps its jobs and their keys, each in its owner's scope", async () => {
    const ferry = await Ferry.open({ store: await store.oldStore(cleanups) });
    cleanups.push(() => ferry.close({ grace: 0 }));
    const [alices, ownerless] = OLD_JOBS as [OldJob, OldJob];
    for (const job of OLD_JOBS) {
      expect((await ferry.status({ id: job.id, cookie: job.cookie })).state).toBe("queued");
    }
    // Each old key still holds for its own owner...
    const again = await ferry.launch("demo.job", {}, { uniqueKey: "welcome", owner: "alice" });
    expect([again.id, again.deduplicated]).toEqual([alices.id, true]);
    const plain = await ferry.launch("demo.job", {}, { uniqueKey: "report" });
    expect([plain.id, plain.deduplicated]).toEqual([ownerless.id, true]);
    // ...and for nobody else.
    const bobs = await ferry.launch("demo.job", {}, { uniqueKey: "welcome", owner: "bob" });
    expect(bobs.deduplicated).toBe(false);
    expect(bobs.id).not.toBe(alices.id);
    const bobsReport = await ferry.launch("demo.job", {}, { uniqueKey: "report", owner: "bob" });
    expect(bobsReport.deduplicated).toBe(false);
    expect((await ferry.stats()).launched).toBe(2);
  });
});

describe("upgrading a NATS store whose unique keys were not scoped", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("keeps the entries of jobs without an owner, and no user's old entry holds in their scope", async () => {
    const { url, prefix, drop } = freshNatsPrefix();
    cleanups.push(drop);
    const ferry = await Ferry.open({ store: url });
    cleanups.push(() => ferry.close({ grace: 0 }));
    const opts = { queue: "parked" };
    const alices = await ferry.launch("demo.job", {}, { ...opts, uniqueKey: "welcome", owner: "alice" });
    const ownerless = await ferry.launch("demo.job", {}, { ...opts, uniqueKey: "report" });
    // Before scoping, alice's job held its key under the bare name that jobs without an owner use.
    const nc = await connect({ servers: new URL(NATS_URL).host });
    cleanups.push(() => nc.close());
    const unique = await new Kvm(nc).open(`${prefix}_unique`);
    const bare = (key: string) => createHash("sha256").update(key).digest("hex");
    await unique.put(bare("welcome"), alices.id);
    expect((await unique.get(bare("report")))?.string()).toBe(ownerless.id);

    // The bare name of a job without an owner is what it always was: it still holds.
    const report = await ferry.launch("demo.job", {}, { ...opts, uniqueKey: "report" });
    expect([report.id, report.deduplicated]).toEqual([ownerless.id, true]);
    // Alice's old entry holds nothing for launches without an owner...
    const welcome = await ferry.launch("demo.job", {}, { ...opts, uniqueKey: "welcome" });
    expect(welcome.deduplicated).toBe(false);
    expect(welcome.id).not.toBe(alices.id);
    // ...and alice's own scope has her job.
    const again = await ferry.launch("demo.job", {}, { ...opts, uniqueKey: "welcome", owner: "alice" });
    expect([again.id, again.deduplicated]).toEqual([alices.id, true]);
  });
});
