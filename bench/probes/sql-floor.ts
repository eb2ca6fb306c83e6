/**
 * Probe: what does the SQL alone cost per job, with Ferry's schema against the raw loop's, side by
 * side in one process (no worker, no JavaScript beyond the loop)? Explains the drain ratio.
 * Run: node --import tsx bench/probes/sql-floor.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS } from "../../src/store/sqlite/schema.js";

const N = 50_000;
const dir = mkdtempSync(join(tmpdir(), "ferry-floor-"));

function fresh(name: string): Database.Database {
  const db = new Database(join(dir, name));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  return db;
}

function loop<R>(db: Database.Database, step: (previous: R[]) => R[]): number {
  const tx = db.transaction(step);
  const started = performance.now();
  let n = 0;
  let previous: R[] = [];
  for (;;) {
    const rows = tx.immediate(previous);
    if (rows.length === 0 && previous.length === 0) break;
    n += rows.length;
    previous = rows;
  }
  db.close();
  return ((performance.now() - started) * 1000) / n;
}

function raw(): number {
  const db = fresh(`raw-${Math.random()}.db`);
  db.exec(`CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL DEFAULT 'queued', payload TEXT NOT NULL);
    CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued';`);
  const insert = db.prepare("INSERT INTO jobs (payload) VALUES ('{}')");
  db.transaction(() => {
    for (let i = 0; i < N; i++) insert.run();
  })();
  const claim = db.prepare(
    "UPDATE jobs SET state = 'running' WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 50) RETURNING id, payload",
  );
  const done = db.prepare("UPDATE jobs SET state = 'done' WHERE id = ?");
  return loop<{ id: number }>(db, (previous) => {
    for (const row of previous) done.run(row.id);
    return claim.all() as { id: number }[];
  });
}

function ferrySchema(): number {
  const db = fresh(`ferry-${Math.random()}.db`);
  db.exec(MIGRATIONS[0]!);
  const insert = db.prepare(`INSERT INTO jobs (id, handler, queue, state, serializer, payload, cookie_hash,
    max_attempts, launched_at, run_at) VALUES (?, 'bench.noop', 'default', 'queued', 'json', '{}', ?, 3, 1, 1)`);
  const hash = Buffer.alloc(32, 9);
  db.transaction(() => {
    for (let i = 0; i < N; i++) insert.run(`01900000-0000-7000-8000-${String(i).padStart(12, "0")}`, hash);
  })();
  const claim = db.prepare(`UPDATE jobs SET state = 'running', attempts = attempts + 1, fence = fence + 1,
      worker_id = 'w', started_at = 1, lease_expires_at = 2, progress = NULL
    WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY jobs_claim WHERE state = 'queued' AND pending_deps = 0
      AND queue = 'default' AND handler IN ('bench.noop') ORDER BY priority DESC, run_at, id LIMIT 50)
    RETURNING rowid, id, handler, queue, payload, serializer, attempts, max_attempts, policy, fence, label,
      group_key, launched_at, priority, run_at`);
  const complete =
    db.prepare(`UPDATE jobs SET state = 'completed', finished_at = 5, error = NULL, worker_id = NULL,
      lease_expires_at = NULL, cancel_deadline = NULL, progress = 1, result = NULL, expires_at = 10
    WHERE rowid = ? AND fence = ? AND state = 'running' RETURNING has_dependents, started_at`);
  return loop<{ rowid: number; fence: number }>(db, (previous) => {
    for (const row of previous) complete.get(row.rowid, row.fence);
    return claim.all() as { rowid: number; fence: number }[];
  });
}

try {
  for (let i = 0; i < 3; i++) {
    const r = raw();
    const f = ferrySchema();
    console.log(
      `raw ${r.toFixed(2)} µs/job, Ferry's schema ${f.toFixed(2)} µs/job, raw/Ferry ${(r / f).toFixed(2)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
