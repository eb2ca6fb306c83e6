import type { Duration } from "../core/duration.js";

/** What a handler sees of its job. */
export interface JobInfo {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly label: string | null;
  readonly launchedAt: Date;
  /** The job's own `timeout` in ms; null when it set none and the worker's default applies. */
  readonly timeoutMs: number | null;
}

export interface JobContext {
  readonly job: JobInfo;
  /** Aborts on cancel, timeout, lease loss and worker shutdown; `signal.reason` is a FerryError. */
  readonly signal: AbortSignal;
  /** Report progress, a fraction from 0 to 1. */
  progress(fraction: number): Promise<void>;
  /** End this attempt and run again after `delay`, without using an attempt. */
  snooze(delay: Duration): never;
  /** Fail now, with no retry. */
  discard(reason: string): never;
  /** End as cancelled. */
  cancel(reason: string): never;
}

export type Handler<P = unknown, R = unknown> = (payload: P, ctx: JobContext) => Promise<R> | R;

/** Anything with zod's `parse`: validates and types a payload. */
export interface PayloadSchema<P> {
  parse(value: unknown): P;
}

/** A job type: one name tied to its payload and result types (see `defineJob`). */
export interface JobDefinition<P = unknown, R = unknown> {
  readonly name: string;
  readonly schema: PayloadSchema<P> | undefined;
  readonly defaults: { readonly timeout?: Duration; readonly attempts?: number; readonly queue?: string };
  readonly handler: Handler<P, R>;
}

/** Any job definition, whatever its payload type (payloads are checked by its own schema). */
export interface AnyJobDefinition {
  readonly name: string;
  readonly schema: PayloadSchema<unknown> | undefined;
  readonly defaults: JobDefinition["defaults"];
  readonly handler: Handler<never, unknown>;
}

export type HandlerEntry = Handler<never, unknown> | AnyJobDefinition;
