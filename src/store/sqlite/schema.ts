/**
 * Versioned schema for the SQLite store. Each entry moves the schema up one version and runs in
 * the same IMMEDIATE transaction as the version bump, so two processes starting at once can't
 * both apply it.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: jobs, dependencies, queues, workers, schedules, counters.
  `
  CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    handler          TEXT NOT NULL,
    queue            TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    owner            TEXT,
    label            TEXT,
    group_key        TEXT,
    unique_key       TEXT,
    serializer       TEXT NOT NULL,
    payload          BLOB,
    cookie_hash      BLOB,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    policy           TEXT,            -- NULL: the default policy (most jobs): keeps rows small
    progress         REAL,
    launched_at      INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    result           BLOB,
    error            TEXT,
    consumed         INTEGER NOT NULL DEFAULT 0,
    detached         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    cancel_deadline  INTEGER,
    fence            INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_expires_at INTEGER,
    pending_deps     INTEGER NOT NULL DEFAULT 0,
    has_dependents   INTEGER NOT NULL DEFAULT 0,
    expires_at       INTEGER
  );
  -- Claiming reads this index in order and stops at LIMIT: cost stays flat as the backlog grows.
  CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) WHERE state = 'queued' AND pending_deps = 0;
  CREATE INDEX jobs_due ON jobs (run_at, queue) WHERE state = 'scheduled';
  CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
  -- Running jobs are few (bounded by total concurrency): the rescuer scans them all.
  CREATE INDEX jobs_running ON jobs (queue, lease_expires_at) WHERE state = 'running';
  CREATE INDEX jobs_group_running ON jobs (queue, group_key) WHERE state = 'running' AND group_key IS NOT NULL;
  -- Finished jobs: pruning by expiry within each state, and counting by state and queue.
  CREATE INDEX jobs_finished ON jobs (state, expires_at, queue) WHERE finished_at IS NOT NULL;
  CREATE INDEX jobs_blocked ON jobs (queue) WHERE state = 'queued' AND pending_deps > 0;
  -- Each state lives in exactly one partial index, so a job moving through its life touches two
  -- index entries per step, and a launch touches one.
  CREATE INDEX jobs_label ON jobs (label) WHERE label IS NOT NULL;

  CREATE TABLE job_deps (
    parent TEXT NOT NULL,
    child  TEXT NOT NULL,
    PRIMARY KEY (parent, child)
  ) WITHOUT ROWID;
  CREATE INDEX job_deps_child ON job_deps (child);

  CREATE TABLE queues (
    name              TEXT PRIMARY KEY,
    paused            INTEGER NOT NULL DEFAULT 0,
    group_concurrency INTEGER
  );

  CREATE TABLE workers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    host              TEXT NOT NULL,
    pid               INTEGER NOT NULL,
    queues            TEXT NOT NULL,
    running           INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    last_heartbeat_at INTEGER NOT NULL
  );

  CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    handler       TEXT NOT NULL,
    spec          TEXT NOT NULL,
    repeat_left   INTEGER,
    payload       BLOB NOT NULL,
    serializer    TEXT NOT NULL,
    options       TEXT NOT NULL,
    owner         TEXT,
    paused        INTEGER NOT NULL DEFAULT 0,
    next_run_at   INTEGER,
    last_fired_at INTEGER,
    created_at    INTEGER NOT NULL
  );
  CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0 AND next_run_at IS NOT NULL;

  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  INSERT INTO counters (name, value) VALUES
    ('launched', 0), ('completed', 0), ('failed', 0), ('cancelled', 0), ('timed_out', 0),
    ('run_ms_total', 0), ('run_count', 0);
  `,
  // 2: the daemon's access document (users, roles, token hashes): one row, written by revision;
  // and a user's unfinished jobs, counted by per-user quotas (library launches have no owner).
  `
  CREATE INDEX jobs_owner_active ON jobs (owner)
    WHERE owner IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
  CREATE TABLE access (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    data     BLOB NOT NULL
  );
  `,
  // 3: groupRate, a queue's limit on starts per group per window, and each group's count in the
  // current window (one row per queue and group, overwritten when a new window opens).
  `
  ALTER TABLE queues ADD COLUMN group_rate_limit INTEGER;
  ALTER TABLE queues ADD COLUMN group_rate_period_ms INTEGER;
  CREATE TABLE group_rates (
    queue     TEXT NOT NULL,
    group_key TEXT NOT NULL,
    window_no INTEGER NOT NULL,
    starts    INTEGER NOT NULL,
    PRIMARY KEY (queue, group_key)
  ) WITHOUT ROWID;
  `,
  // 4: a uniqueKey is unique within its owner's jobs ("" for jobs launched without an owner),
  // so two users never meet through one. Every pair the old index allowed stays allowed.
  `
  DROP INDEX jobs_unique;
  CREATE UNIQUE INDEX jobs_unique ON jobs (coalesce(owner, ''), unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
  `,
  // 5: why the scheduler paused a schedule (its owner lost the right to start its handler).
  "ALTER TABLE schedules ADD COLUMN paused_reason TEXT;",
];

export const SCHEMA_VERSION = MIGRATIONS.length;
