/**
 * Ferry's defaults and caps, each written once: the library (Ferry, Worker), the stores, the
 * command line, the remote client and the daemon's configuration schema all read them from here,
 * so a library user and a daemon user get the same behaviour unless they set otherwise. The
 * documented values (docs/api.md, docs/config.md) are these. Launch options have their own
 * (LAUNCH_DEFAULTS in options.ts).
 */
import { parseDuration } from "./duration.js";

/** The store a Ferry, `ferry migrate` and the daemon open when nothing (nor FERRY_STORE) names one. */
export const DEFAULT_STORE_URL = "sqlite:./ferry.db";

/** The largest payload a launch may carry, and the largest result a handler may return: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1_048_576;

/** An attempt's timeout when neither the launch nor the job's definition sets one; also sql.exec's statement_timeout. */
export const DEFAULT_TIMEOUT = "5m";

/** Stored error strings (message, detail, fields) are cut to this many bytes, UTF-8 safe. */
export const DEFAULT_ERROR_MAX_BYTES = 512;

/** The longest grace a cancel may give a running job (pg_background's cap), as configured and in ms. */
export const CANCEL_GRACE_MAX = "1h";
export const CANCEL_GRACE_MAX_MS = parseDuration(CANCEL_GRACE_MAX, "cancel grace cap");

/** How long a detached job's record is kept at most (nobody can collect its result): for listing only. */
export const DETACHED_KEEP_MS = 3_600_000;

/** The queue a worker takes work from when given none. */
export const DEFAULT_QUEUE = "default";

/** Jobs a worker runs at once. */
export const DEFAULT_CONCURRENCY = 8;

/** How long a claim holds without renewal (renewed every third of it). */
export const DEFAULT_LEASE = "30s";

/** How often a worker looks for work when no event says there is some. */
export const DEFAULT_POLL_INTERVAL = "1s";

/** How often a worker rescues jobs whose lease expired, prunes and fires schedules. */
export const DEFAULT_RESCUE_INTERVAL = "5s";

/** How long running jobs get to finish when a worker or the daemon stops (SIGTERM, SIGINT). */
export const DEFAULT_STOP_GRACE = "30s";

/** Where the daemon listens, and so where the remote client and CLI look for it. */
export const DEFAULT_BIND_ADDRESS = "127.0.0.1";
export const DEFAULT_PORT = 50_051;
export const DEFAULT_SERVER = `http://${DEFAULT_BIND_ADDRESS}:${DEFAULT_PORT}`;
