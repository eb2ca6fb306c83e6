import { newJobId } from "../../src/core/ids.js";
import { DEFAULT_POLICY } from "../../src/core/options.js";
import type { NewJob } from "../../src/store/store.js";

/** A plain job as the API would hand it to `Store.enqueue` (payload `null`, no handle), for store-level tests. */
export const plainNewJob = (handler: string, queue = "default", overrides: Partial<NewJob> = {}): NewJob => ({
  id: newJobId(),
  handler,
  queue,
  payload: new TextEncoder().encode("null"),
  serializer: "json",
  cookieHash: null,
  owner: null,
  priority: 0,
  delayMs: 0,
  runAt: null,
  maxAttempts: 1,
  policy: DEFAULT_POLICY,
  uniqueKey: null,
  label: null,
  group: null,
  dependsOn: [],
  detached: true,
  ...overrides,
});
