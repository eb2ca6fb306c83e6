/**
 * Probe: would a claim that writes no job row reach the drain target? Same SQL-only loop as
 * sql-floor.ts, but claiming reads the next rows after a per-queue cursor (rowid order), moves the
 * cursor and inserts one lease row per batch; completing is the only write to a job row. Against
 * the raw loop this measured 0.37-0.38 (SQL alone, before any worker work): still short of 0.5.
 * Run: node --import tsx bench/probes/cursor-claim.ts
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS } from "../../src/store/sqlite/schema.js";

const N = 50_000;
const dir = mkdtempSync(join(tmpdir(), "cur-"));
function fresh(name: string) {
  const db = new Database(join(dir, name));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  return db;
}
function raw() {
  const db = fresh(`r${Math.random()}.db`);
  db.exec(
    `CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL DEFAULT 'queued', payload TEXT NOT NULL); CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued';`,
  );
  const ins = db.prepare("INSERT INTO jobs (payload) VALUES ('{}')");
  db.transaction(() => {
    for (let i = 0; i < N; i++) ins.run();
  })();
  const claim = db.prepare(
    "UPDATE jobs SET state = 'running' WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 50) RETURNING id, payload",
  );
  const done = db.prepare("UPDATE jobs SET state = 'done' WHERE id = ?");
  const tx = db.transaction((prev: { id: number }[]) => {
    for (const p of prev) done.run(p.id);
    return claim.all() as { id: number }[];
  });
  const t = performance.now();
  let n = 0;
  let prev: { id: number }[] = [];
  for (;;) {
    const rows = tx.immediate(prev);
    if (!rows.length && !prev.length) break;
    n += rows.length;
    prev = rows;
  }
  db.close();
  return ((performance.now() - t) * 1000) / n;
}
function cursor() {
  const db = fresh(`c${Math.random()}.db`);
  db.exec(MIGRATIONS[0]!.replace(/CREATE INDEX jobs_claim[^;]*;/, ""));
  db.exec(`CREATE TABLE cursors (queue TEXT PRIMARY KEY, pos INTEGER NOT NULL) WITHOUT ROWID; INSERT INTO cursors VALUES ('default', 0);
    CREATE TABLE batches (id INTEGER PRIMARY KEY, worker TEXT NOT NULL, fence INTEGER NOT NULL, expires_at INTEGER NOT NULL);`);
  const ins = db.prepare(
    `INSERT INTO jobs (id, handler, queue, state, serializer, payload, cookie_hash, max_attempts, launched_at, run_at) VALUES (?, 'bench.noop', 'default', 'queued', 'json', '{}', ?, 3, 1, 1)`,
  );
  const h = Buffer.alloc(32, 9);
  db.transaction(() => {
    for (let i = 0; i < N; i++) ins.run(`01900000-0000-7000-8000-${String(i).padStart(12, "0")}`, h);
  })();
  const pos = db.prepare("SELECT pos FROM cursors WHERE queue = 'default'");
  const take =
    db.prepare(`SELECT rowid, id, handler, queue, payload, serializer, attempts, max_attempts, policy, fence, label, group_key, launched_at, priority
    FROM jobs WHERE rowid > ? AND state = 'queued' AND queue = 'default' AND handler IN ('bench.noop') ORDER BY rowid LIMIT 50`);
  const move = db.prepare("UPDATE cursors SET pos = ? WHERE queue = 'default'");
  const batch = db.prepare("INSERT INTO batches (worker, fence, expires_at) VALUES ('w', 1, 2)");
  const endBatch = db.prepare("DELETE FROM batches WHERE id = ?");
  const complete =
    db.prepare(`UPDATE jobs SET state = 'completed', attempts = attempts + 1, started_at = 1, finished_at = 5, progress = 1, result = NULL, expires_at = 10
    WHERE rowid = ? AND state = 'queued'`);
  type B = { batch: number; rows: { rowid: number }[] };
  const tx = db.transaction((prev: B | null): B | null => {
    if (prev) {
      for (const r of prev.rows) complete.run(r.rowid);
      endBatch.run(prev.batch);
    }
    const p = (pos.get() as { pos: number }).pos;
    const rows = take.all(p) as { rowid: number }[];
    if (!rows.length) return null;
    move.run(rows[rows.length - 1]!.rowid);
    return { batch: Number(batch.run().lastInsertRowid), rows };
  });
  const t = performance.now();
  let n = 0;
  let prev: B | null = null;
  for (;;) {
    const b = tx.immediate(prev);
    if (!b && !prev) break;
    n += b ? b.rows.length : 0;
    prev = b;
    if (!b) {
      tx.immediate(null);
      break;
    }
  }
  db.close();
  return ((performance.now() - t) * 1000) / n;
}
try {
  for (let i = 0; i < 3; i++) {
    const r = raw();
    const c = cursor();
    console.log(
      `raw ${r.toFixed(2)} µs/job, cursor design ${c.toFixed(2)} µs/job, raw/cursor ${(r / c).toFixed(2)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
