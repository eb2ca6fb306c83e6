export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects after ms (the work itself goes on: callers tear down and move on). */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const round = (value: number, digits = 3): number => {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
};

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * An attached worker's claim loop with no wake-up from a producer: `round` claims, runs and
 * completes one batch and answers how many jobs it finished; a round that found nothing waits
 * `idleMs` (only at a drain's end, when another process holds the last jobs). Runs while `running()`.
 */
export async function pollLoop(
  round: () => Promise<number>,
  running: () => boolean,
  onDone: () => void,
  idleMs = 1,
): Promise<void> {
  while (running()) {
    const finished = await round();
    if (finished === 0) await sleep(idleMs);
    for (let i = 0; i < finished; i++) onDone();
  }
}
