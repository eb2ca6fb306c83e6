import { type FiringGate, gatedFiring } from "../scheduler/fire.js";
import type { Store } from "../store/store.js";

/**
 * The housekeeping every worker shares: rescue expired leases, fire due schedules, prune finished
 * jobs past their retention. Each step is atomic in the store, so many workers may run it at once.
 */
export class Maintenance {
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #ticks = 0;
  readonly #fire: ReturnType<typeof gatedFiring>;

  constructor(
    private readonly store: Store,
    private readonly intervalMs: number,
    private readonly options: {
      workerTtlMs: number;
      onError: (error: unknown, during: string) => void;
      /** Checked before each schedule fires (see WorkerOptions.firingGate). */
      firingGate?: FiringGate | undefined;
    },
  ) {
    this.#fire = gatedFiring(options.firingGate);
  }

  start(): void {
    // Schedules tick every second at most; rescue and pruning at the configured interval.
    const tickMs = Math.min(1_000, this.intervalMs);
    this.#timer = setInterval(() => void this.tick(tickMs), tickMs);
    this.#timer.unref();
    void this.tick(tickMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  private async tick(tickMs: number): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const every = Math.max(1, Math.round(this.intervalMs / tickMs));
    try {
      await this.step("schedules", () => this.store.fireDueSchedules(this.#fire));
      if (this.#ticks % every === 0) {
        await this.step("rescue", () => this.store.rescueExpired(this.options.workerTtlMs));
        await this.step("prune", () => this.store.pruneExpired(1_000));
      }
      this.#ticks += 1;
    } finally {
      this.#running = false;
    }
  }

  private async step(during: string, work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.options.onError(error, during);
    }
  }
}
