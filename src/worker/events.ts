import type { ErrorInfo } from "../core/job.js";

/**
 * Everything a worker reports, by name. Job outcomes are reported once the store accepted them.
 * Listeners that throw are ignored: they never break the worker.
 */
export interface WorkerEventMap {
  "job:started": { readonly id: string; readonly handler: string; readonly attempt: number };
  "job:completed": {
    readonly id: string;
    readonly handler: string;
    readonly attempt: number;
    readonly ms: number;
  };
  "job:failed": {
    readonly id: string;
    readonly handler: string;
    readonly error: ErrorInfo;
    /** true: another attempt is scheduled. */
    readonly willRetry: boolean;
  };
  "job:snoozed": { readonly id: string; readonly handler: string; readonly delayMs: number };
  "job:cancelled": { readonly id: string; readonly handler: string };
  /**
   * The store no longer gives this worker the job (rescued after a stall, cancelled and forced,
   * or fenced off): the handler is aborted if still running, or its outcome was refused.
   */
  "job:lease-lost": { readonly id: string; readonly handler: string };
  /** A store call failed; the worker backs off and tries again. */
  error: { readonly error: unknown; readonly during: string };
  stopped: Record<string, never>;
}

export type WorkerEventName = keyof WorkerEventMap;
type Listener<K extends WorkerEventName> = (event: WorkerEventMap[K]) => void;

export class TypedEvents {
  readonly #listeners = new Map<WorkerEventName, Set<(event: never) => void>>();

  on<K extends WorkerEventName>(name: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  hasAny(): boolean {
    for (const set of this.#listeners.values()) if (set.size > 0) return true;
    return false;
  }

  /** Whether anyone listens: lets hot paths skip building an event nobody reads. */
  has(name: WorkerEventName): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  emit<K extends WorkerEventName>(name: K, event: WorkerEventMap[K]): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(event);
      } catch {
        // A listener's bug is the listener's: the worker goes on.
      }
    }
  }
}
