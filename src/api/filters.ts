import { CANCEL_GRACE_MAX_MS } from "../core/defaults.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { invalidArgument } from "../core/errors.js";
import { checkQueueName } from "../core/names.js";
import type { JobFilter } from "../store/store.js";
import type { ListFilter } from "./api-types.js";

const DEFAULT_GRACE_MS = 5_000;

/** Cancel grace: default 5 s, at most one hour (pg_background's cap). */
export function checkGrace(grace: Duration | undefined): number {
  const ms = grace === undefined ? DEFAULT_GRACE_MS : parseDuration(grace, "grace");
  if (ms > CANCEL_GRACE_MAX_MS) throw invalidArgument("grace is capped at one hour");
  return ms;
}

export function toStoreFilter(filter: ListFilter): JobFilter {
  if (filter.queue !== undefined) checkQueueName(filter.queue);
  if (filter.label !== undefined && (typeof filter.label !== "string" || filter.label.length > 256)) {
    throw invalidArgument("label pattern must be a string of at most 256 characters");
  }
  return {
    state: filter.state,
    queue: filter.queue,
    label: filter.label,
    handler: filter.handler,
    owner: filter.owner,
  };
}
