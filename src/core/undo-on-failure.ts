/**
 * Start-up in steps that each open something (plugins, a store, a port): when a later step fails,
 * what the earlier ones opened is closed again, last first, and the failure is thrown on. A port in
 * use must not leave workers running on the store behind a process that never served.
 */
export async function undoOnFailure<T>(
  start: (opened: (close: () => unknown) => void) => Promise<T>,
): Promise<T> {
  const closers: (() => unknown)[] = [];
  try {
    return await start((close) => closers.push(close));
  } catch (error) {
    for (const close of closers.reverse()) {
      // A closer that fails must not hide the failure that matters, nor stop the others.
      await Promise.resolve()
        .then(close)
        .catch(() => undefined);
    }
    throw error;
  }
}
