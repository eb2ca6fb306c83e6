import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Errors a handler leaves behind (a rejection or throw from a timer it started) surface as
 * process-level events, outside any await. The worker runs each handler inside this
 * AsyncLocalStorage so such an error can be pinned to the job that caused it and fail its attempt,
 * instead of crashing the process.
 */
export interface ErrorSink {
  fail(reason: unknown): void;
}

export const jobScope = new AsyncLocalStorage<ErrorSink>();

let installed = 0;

function onRejection(reason: unknown): void {
  const sink = jobScope.getStore();
  if (sink !== undefined) {
    sink.fail(reason);
    return;
  }
  // Not ours: leave it to the application's own listeners, or be fatal as Node is without any.
  if (process.listenerCount("unhandledRejection") === 1) throw reason;
}

function onException(error: unknown): void {
  const sink = jobScope.getStore();
  if (sink !== undefined) {
    sink.fail(error);
    return;
  }
  if (process.listenerCount("uncaughtException") === 1) throw error;
}

/** Counted: installed while at least one worker runs, removed when the last stops. */
export function captureDetachedErrors(): () => void {
  if (installed++ === 0) {
    process.on("unhandledRejection", onRejection);
    process.on("uncaughtException", onException);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--installed === 0) {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    }
  };
}
