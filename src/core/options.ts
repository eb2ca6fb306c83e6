/**
 * Launch options: one schema, one resolver, one place for defaults (documented in docs/api.md).
 */
import { z } from "zod";
import { type Duration, parseDuration } from "./duration.js";
import { invalidArgument } from "./errors.js";
import type { BackoffPolicy, Handle, JobPolicy } from "./job.js";
import { checkQueueName } from "./names.js";

export const LAUNCH_DEFAULTS = {
  queue: "default",
  priority: 0,
  attempts: 3,
  backoff: { type: "exponential", baseMs: 1_000, maxMs: 600_000, jitter: 0.1 } satisfies BackoffPolicy,
  resultTtlMs: 7 * 86_400_000,
} as const;

const duration = z.union([z.string().max(32), z.number().nonnegative().finite()]);
const code = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/);
// Extra fields (a LaunchedHandle's `deduplicated`) are fine: only id and cookie are read.
const handleSchema = z.object({ id: z.string().max(64), cookie: z.string().max(64) });

const launchOptionsSchema = z.strictObject({
  queue: z.string().optional(),
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  delay: duration.optional(),
  runAt: z.date().optional(),
  attempts: z.number().int().min(1).max(1_000).optional(),
  backoff: z
    .strictObject({
      type: z.enum(["fixed", "exponential"]),
      base: duration.optional(),
      max: duration.optional(),
      jitter: z.number().min(0).max(1).optional(),
    })
    .optional(),
  timeout: duration.optional(),
  uniqueKey: z.string().min(1).max(256).optional(),
  serializer: z.string().max(32).optional(),
  label: z.string().max(256).optional(),
  dependsOn: z.array(handleSchema).max(100).optional(),
  group: z.string().min(1).max(128).optional(),
  retryOn: z.array(code).max(32).optional(),
  ignoreOn: z.array(code).max(32).optional(),
  resultTtl: duration.optional(),
  owner: z.string().min(1).max(128).optional(),
  tx: z.unknown().optional(),
});

export interface LaunchOptions {
  /** Queue to run on. Default "default". */
  queue?: string;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Run no earlier than this long from now. */
  delay?: Duration;
  /** Or no earlier than this time. */
  runAt?: Date;
  /** Attempts in all, including the first. Default 3. */
  attempts?: number;
  /** Default exponential from 1s, capped at 10m, 10% jitter. */
  backoff?: { type: "fixed" | "exponential"; base?: Duration; max?: Duration; jitter?: number };
  /** Abort the attempt after this long. Default: the worker's defaultTimeout. */
  timeout?: Duration;
  /** While an unfinished job holds this key, launching another stores nothing. */
  uniqueKey?: string;
  /** "json" (default), "msgpack", or a registered serializer. */
  serializer?: string;
  label?: string;
  /** Run only after these jobs complete; fail if one fails or is cancelled. */
  dependsOn?: readonly Handle[];
  /** Jobs of one group share the queue's groupConcurrency limit. */
  group?: string;
  /** Retry only errors with these codes. */
  retryOn?: readonly string[];
  /** Never retry errors with these codes. */
  ignoreOn?: readonly string[];
  /** How long a finished job's result is kept unread. Default 7d. */
  resultTtl?: Duration;
  /** The user launching (set by the daemon from the caller's token). */
  owner?: string;
  /** PostgreSQL: a client inside your open transaction; the job exists only if you commit. */
  tx?: unknown;
}

/** `wait`, `waitAny` and `drain`. */
export interface WaitOptions {
  readonly timeout?: Duration;
  /** Stop waiting when it aborts: the call throws the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface ResolvedLaunch {
  readonly queue: string;
  readonly priority: number;
  readonly delayMs: number;
  readonly runAt: number | null;
  readonly maxAttempts: number;
  readonly policy: JobPolicy;
  readonly uniqueKey: string | null;
  readonly serializer: string | null;
  readonly label: string | null;
  readonly dependsOn: readonly Handle[];
  readonly group: string | null;
  readonly owner: string | null;
}

/** The policy of a job launched without options; stores may keep it as "no policy". */
export const DEFAULT_POLICY: JobPolicy = {
  backoff: LAUNCH_DEFAULTS.backoff,
  timeoutMs: null,
  retryOn: null,
  ignoreOn: null,
  resultTtlMs: LAUNCH_DEFAULTS.resultTtlMs,
};

const DEFAULT_RESOLVED: ResolvedLaunch = {
  queue: LAUNCH_DEFAULTS.queue,
  priority: LAUNCH_DEFAULTS.priority,
  delayMs: 0,
  runAt: null,
  maxAttempts: LAUNCH_DEFAULTS.attempts,
  policy: DEFAULT_POLICY,
  uniqueKey: null,
  serializer: null,
  label: null,
  dependsOn: [],
  group: null,
  owner: null,
};

/** Validates and defaults launch options; anything off is FERRY_INVALID_ARGUMENT naming the option. */
export function resolveLaunchOptions(options: LaunchOptions | undefined): ResolvedLaunch {
  // Bulk launches usually pass no options: skip the schema walk for them.
  if (options === undefined) return DEFAULT_RESOLVED;
  const parsed = launchOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join(".") : "options";
    throw invalidArgument(`launch option ${where}: ${issue.message}`, { option: where });
  }
  const o = parsed.data;
  const backoff: BackoffPolicy = o.backoff
    ? {
        type: o.backoff.type,
        baseMs:
          o.backoff.base === undefined
            ? LAUNCH_DEFAULTS.backoff.baseMs
            : parseDuration(o.backoff.base, "backoff.base"),
        maxMs:
          o.backoff.max === undefined
            ? LAUNCH_DEFAULTS.backoff.maxMs
            : parseDuration(o.backoff.max, "backoff.max"),
        jitter: o.backoff.jitter ?? LAUNCH_DEFAULTS.backoff.jitter,
      }
    : LAUNCH_DEFAULTS.backoff;
  if (o.delay !== undefined && o.runAt !== undefined) throw invalidArgument("give delay or runAt, not both");
  if (o.runAt !== undefined && Number.isNaN(o.runAt.getTime()))
    throw invalidArgument("runAt is not a valid date");
  const timeoutMs = o.timeout === undefined ? null : parseDuration(o.timeout, "timeout");
  if (timeoutMs === 0) throw invalidArgument("timeout must be positive");
  return {
    queue: o.queue === undefined ? LAUNCH_DEFAULTS.queue : checkQueueName(o.queue),
    priority: o.priority ?? 0,
    delayMs: o.delay === undefined ? 0 : parseDuration(o.delay, "delay"),
    runAt: o.runAt === undefined ? null : o.runAt.getTime(),
    maxAttempts: o.attempts ?? LAUNCH_DEFAULTS.attempts,
    policy: {
      backoff,
      timeoutMs,
      retryOn: o.retryOn ?? null,
      ignoreOn: o.ignoreOn ?? null,
      resultTtlMs:
        o.resultTtl === undefined ? LAUNCH_DEFAULTS.resultTtlMs : parseDuration(o.resultTtl, "resultTtl"),
    },
    uniqueKey: o.uniqueKey ?? null,
    serializer: o.serializer ?? null,
    label: o.label ?? null,
    dependsOn: o.dependsOn ?? [],
    group: o.group ?? null,
    owner: o.owner ?? null,
  };
}
