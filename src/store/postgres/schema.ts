/**
 * Versioned schema for the PostgreSQL store, inside its own schema (default `ferry`). Each entry
 * moves the schema up one version; `migrate` runs them under an advisory lock, so two processes
 * starting at once apply each step once.
 *
 * Times are epoch milliseconds (bigint) taken from the database clock (`ms_now()`), never from a
 * worker's clock: leases and run times stay consistent across machines.
 */
export const MIGRATIONS: readonly ((schema: string) => string)[] = [
  // 1: jobs, dependencies, queues, workers, schedules, counters.
  (s) => `
  CREATE FUNCTION ${s}.ms_now() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;

  CREATE TABLE ${s}.jobs (
    id               uuid PRIMARY KEY,
    handler          text NOT NULL,
    queue            text NOT NULL,
    state            text NOT NULL,
    priority         integer NOT NULL DEFAULT 0,
    owner            text,
    label            text,
    group_key        text,
    unique_key       text,
    serializer       text NOT NULL,
    payload          bytea,
    cookie_hash      bytea,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    policy           text,            -- NULL: the default policy
    progress         double precision,
    launched_at      bigint NOT NULL,
    run_at           bigint NOT NULL,
    started_at       bigint,
    finished_at      bigint,
    result           bytea,
    error            text,
    consumed         boolean NOT NULL DEFAULT false,
    detached         boolean NOT NULL DEFAULT false,
    cancel_requested boolean NOT NULL DEFAULT false,
    cancel_deadline  bigint,
    fence            bigint NOT NULL DEFAULT 0,
    worker_id        text,
    lease_expires_at bigint,
    pending_deps     integer NOT NULL DEFAULT 0,
    has_dependents   boolean NOT NULL DEFAULT false,
    watched          boolean NOT NULL DEFAULT false, -- a waiter elsewhere wants its changes announced
    expires_at       bigint
  );
  -- Claiming reads this index in order and stops at LIMIT (SKIP LOCKED passes rows others hold).
  CREATE INDEX jobs_claim ON ${s}.jobs (queue, priority DESC, run_at, id) WHERE state = 'queued' AND pending_deps = 0;
  CREATE INDEX jobs_due ON ${s}.jobs (run_at) WHERE state = 'scheduled';
  CREATE UNIQUE INDEX jobs_unique ON ${s}.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
  CREATE INDEX jobs_running ON ${s}.jobs (lease_expires_at) WHERE state = 'running';
  -- Heartbeats look up their worker's jobs with a pending cancel: only those are indexed.
  CREATE INDEX jobs_cancelling ON ${s}.jobs (worker_id) WHERE state = 'running' AND cancel_requested;
  CREATE INDEX jobs_group_running ON ${s}.jobs (queue, group_key) WHERE state = 'running' AND group_key IS NOT NULL;
  CREATE INDEX jobs_finished ON ${s}.jobs (expires_at) WHERE finished_at IS NOT NULL;
  CREATE INDEX jobs_label ON ${s}.jobs (label) WHERE label IS NOT NULL;

  CREATE TABLE ${s}.job_deps (
    parent uuid NOT NULL,
    child  uuid NOT NULL,
    PRIMARY KEY (parent, child)
  );
  CREATE INDEX job_deps_child ON ${s}.job_deps (child);

  CREATE TABLE ${s}.queues (
    name              text PRIMARY KEY,
    paused            boolean NOT NULL DEFAULT false,
    group_concurrency integer
  );

  CREATE TABLE ${s}.workers (
    id                text PRIMARY KEY,
    name              text NOT NULL,
    host              text NOT NULL,
    pid               integer NOT NULL,
    queues            text NOT NULL,
    running           integer NOT NULL,
    started_at        bigint NOT NULL,
    last_heartbeat_at bigint NOT NULL
  );

  CREATE TABLE ${s}.schedules (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    handler       text NOT NULL,
    spec          text NOT NULL,
    repeat_left   integer,
    payload       bytea NOT NULL,
    serializer    text NOT NULL,
    options       text NOT NULL,
    owner         text,
    paused        boolean NOT NULL DEFAULT false,
    next_run_at   bigint,
    last_fired_at bigint,
    created_at    bigint NOT NULL
  );
  CREATE INDEX schedules_due ON ${s}.schedules (next_run_at) WHERE NOT paused AND next_run_at IS NOT NULL;

  -- Lifetime counters, sharded so concurrent workers don't queue on one hot row.
  CREATE TABLE ${s}.counters (
    name  text NOT NULL,
    shard integer NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (name, shard)
  );
  `,
  // 2: the daemon's access document (users, roles, token hashes): one row, written by revision;
  // and a user's unfinished jobs, counted by per-user quotas (library launches have no owner).
  (s) => `
  CREATE INDEX jobs_owner_active ON ${s}.jobs (owner)
    WHERE owner IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
  CREATE TABLE ${s}.access (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL,
    data     bytea NOT NULL
  );
  `,
  // 3: groupRate, a queue's limit on starts per group per window, and each group's count in the
  // current window (one row per queue and group, overwritten when a new window opens).
  (s) => `
  ALTER TABLE ${s}.queues ADD COLUMN group_rate_limit integer, ADD COLUMN group_rate_period_ms bigint;
  CREATE TABLE ${s}.group_rates (
    queue     text NOT NULL,
    group_key text NOT NULL,
    window_no bigint NOT NULL,
    starts    integer NOT NULL,
    PRIMARY KEY (queue, group_key)
  );
  `,
  // 4: a uniqueKey is unique within its owner's jobs ("" for jobs launched without an owner),
  // so two users never meet through one. Every pair the old index allowed stays allowed.
  (s) => `
  DROP INDEX ${s}.jobs_unique;
  CREATE UNIQUE INDEX jobs_unique ON ${s}.jobs ((coalesce(owner, '')), unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
  `,
  // 5: why the scheduler paused a schedule (its owner lost the right to start its handler).
  (s) => `ALTER TABLE ${s}.schedules ADD COLUMN paused_reason text;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Schema names are identifiers spliced into SQL: allow only plain lower-case names. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
