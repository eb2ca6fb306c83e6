import type { ClaimedJob, Outcome } from "../store/store.js";
import type { TypedEvents } from "./events.js";

/** An outcome waiting for the worker's next store write, with what to report once it applied. */
export interface Pending {
  readonly outcome: Outcome;
  readonly job: ClaimedJob;
  readonly ms: number;
}

/** Reports outcomes once the store took them; a refused one means another worker owns the job now. */
export function reportWritten(
  events: TypedEvents,
  batch: readonly Pending[],
  applied: readonly boolean[],
): void {
  if (!events.hasAny()) return;
  batch.forEach((pending, i) => {
    const { outcome, job, ms } = pending;
    const { id, handler, attempt } = job;
    if (applied[i] !== true) {
      if (outcome.kind !== "release") events.emit("job:lease-lost", { id, handler });
      return;
    }
    switch (outcome.kind) {
      case "completed":
        events.emit("job:completed", { id, handler, attempt, ms });
        break;
      case "failed":
      case "retry":
        events.emit("job:failed", {
          id,
          handler,
          error: outcome.error,
          willRetry: outcome.kind === "retry",
        });
        break;
      case "snooze":
        events.emit("job:snoozed", { id, handler, delayMs: outcome.delayMs });
        break;
      case "cancelled":
        events.emit("job:cancelled", { id, handler });
        break;
      case "release":
        break;
    }
  });
}
