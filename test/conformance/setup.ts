import { afterEach, beforeEach } from "vitest";
import type { Ferry, OpenOptions } from "../../src/index.js";
import type { StoreUnderTest } from "./stores.js";

export interface Harness {
  ferry: Ferry;
  /** A second Ferry on the same store (another "process" as far as the API can tell). */
  shared: () => Promise<Ferry>;
}

/** Gives each test a fresh store of the kind under test, closed and removed afterwards. */
export function useStore(store: StoreUnderTest, options: Omit<OpenOptions, "store"> = {}): Harness {
  const harness = {} as Harness;
  let cleanup: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    const opened = await store.fresh(options);
    harness.ferry = opened.ferry;
    harness.shared = opened.shared;
    cleanup = opened.cleanup;
  });
  afterEach(async () => {
    await cleanup?.();
  });
  return harness;
}
