import { hostname } from "node:os";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_LEASE,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_POLL_INTERVAL,
  DEFAULT_QUEUE,
  DEFAULT_RESCUE_INTERVAL,
  DEFAULT_TIMEOUT,
} from "../core/defaults.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { ERROR_MAX_BYTES } from "../core/error-info.js";
import { invalidArgument } from "../core/errors.js";
import { checkHandlerName, checkQueueName } from "../core/names.js";
import type { FiringGate } from "../scheduler/fire.js";
import type { AnyJobDefinition, Handler, HandlerEntry, JobDefinition } from "./handler.js";

export interface WorkerOptions {
  /** Queues to take work from, in order of preference. Default ["default"]. */
  queues?: readonly string[];
  /** Jobs run at once. Default 8 (as the daemon's [workers] concurrency). */
  concurrency?: number;
  /**
   * Jobs claimed ahead of free slots and held locally until a slot frees (graphile-worker's "local
   * queue"): fewer, larger store round trips for short jobs. They count as running in the store
   * (leased to this worker) while they wait. Default 0.
   */
  prefetch?: number;
  handlers: Readonly<Record<string, HandlerEntry>> | readonly AnyJobDefinition[];
  /** Name shown by ferry.workers(). Default host:pid. */
  name?: string;
  /** How long a claim holds without renewal. Default 30s; renewed every third of it. */
  lease?: Duration;
  /** Timeout for jobs that set none. Default 5m. */
  defaultTimeout?: Duration;
  /** How often to look for work when no event says there is some. Default 1s. */
  pollInterval?: Duration;
  /** How often to rescue jobs whose lease expired, prune and fire schedules. Default 5s. */
  rescueInterval?: Duration;
  /** Run the rescuer, pruning and the scheduler in this worker. Default true. */
  maintenance?: boolean;
  /**
   * Asked before each due schedule fires: a reason it answers pauses the schedule instead. The
   * daemon gives one that checks that the owner still exists and may launch the handler.
   * Default: none (every due schedule fires).
   */
  firingGate?: FiringGate;
  /** Largest result a handler may return, in bytes. Default 1 MiB. */
  maxResultBytes?: number;
  /** Stored error strings (message, detail, fields) are cut to this many bytes, UTF-8 safe. Default 512. */
  errorMaxBytes?: number;
}

/** A worker's options checked, with their defaults in, and its handlers by name. */
export interface WorkerSettings {
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly prefetch: number;
  readonly name: string;
  readonly leaseMs: number;
  readonly defaultTimeoutMs: number;
  readonly pollMs: number;
  readonly maxResultBytes: number;
  readonly errorMaxBytes: number;
  readonly handlers: ReadonlyMap<string, JobDefinition<unknown, unknown>>;
  /** Undefined when maintenance is off. */
  readonly rescueMs: number | undefined;
  readonly firingGate: FiringGate | undefined;
}

/** Checks a worker's options (FERRY_INVALID_ARGUMENT on the first wrong one) and fills in defaults. */
export function workerSettings(options: WorkerOptions): WorkerSettings {
  const queues = (options.queues ?? [DEFAULT_QUEUE]).map(checkQueueName);
  if (queues.length === 0) throw invalidArgument("a worker needs at least one queue");
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw invalidArgument("concurrency must be an integer from 1 to 10000");
  }
  const prefetch = options.prefetch ?? 0;
  if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > 10_000) {
    throw invalidArgument("prefetch must be an integer from 0 to 10000");
  }
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const leaseMs = parseDuration(options.lease ?? DEFAULT_LEASE, "lease");
  if (leaseMs < 200) throw invalidArgument("lease must be at least 200ms");
  const defaultTimeoutMs = parseDuration(options.defaultTimeout ?? DEFAULT_TIMEOUT, "defaultTimeout");
  const pollMs = Math.max(10, parseDuration(options.pollInterval ?? DEFAULT_POLL_INTERVAL, "pollInterval"));
  const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const errorMaxBytes = options.errorMaxBytes ?? ERROR_MAX_BYTES;
  if (!Number.isInteger(errorMaxBytes) || errorMaxBytes < 64 || errorMaxBytes > 65_536) {
    throw invalidArgument("errorMaxBytes must be an integer from 64 to 65536");
  }
  const handlers = new Map<string, JobDefinition<unknown, unknown>>();
  const entries: [string, HandlerEntry][] = Array.isArray(options.handlers)
    ? options.handlers.map((d: AnyJobDefinition) => [d.name, d] as [string, HandlerEntry])
    : Object.entries(options.handlers as Record<string, HandlerEntry>);
  for (const [handlerName, entry] of entries) {
    checkHandlerName(handlerName);
    const definition: JobDefinition<unknown, unknown> =
      typeof entry === "function"
        ? { name: handlerName, schema: undefined, defaults: {}, handler: entry as Handler<unknown, unknown> }
        : (entry as unknown as JobDefinition<unknown, unknown>);
    handlers.set(handlerName, definition);
  }
  const rescueMs =
    options.maintenance !== false
      ? parseDuration(options.rescueInterval ?? DEFAULT_RESCUE_INTERVAL, "rescueInterval")
      : undefined;
  return {
    queues,
    concurrency,
    prefetch,
    name,
    leaseMs,
    defaultTimeoutMs,
    pollMs,
    maxResultBytes,
    errorMaxBytes,
    handlers,
    rescueMs,
    firingGate: options.firingGate,
  };
}
