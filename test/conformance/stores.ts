/**
 * The stores the conformance suite runs against. Each entry opens a fresh, isolated store (its
 * own file, schema or stream prefix) and cleans it up. Every backend must pass the same suite.
 */
import { join } from "node:path";
import { Ferry, type OpenOptions } from "../../src/index.js";
import { tempDir } from "../helpers/temp.js";

export interface StoreUnderTest {
  readonly name: string;
  /** Opens a Ferry on a fresh store; `shared` opens a second Ferry on the same store. */
  fresh(
    options?: Omit<OpenOptions, "store">,
  ): Promise<{ ferry: Ferry; shared: () => Promise<Ferry>; cleanup: () => Promise<void> }>;
}

const sqlite: StoreUnderTest = {
  name: "sqlite",
  async fresh(options = {}) {
    const dir = tempDir("ferry-conf-");
    const url = `sqlite:${join(dir.path, "ferry.db")}`;
    const opened: Ferry[] = [];
    const open = async () => {
      const ferry = await Ferry.open({ ...options, store: url });
      opened.push(ferry);
      return ferry;
    };
    const ferry = await open();
    return {
      ferry,
      shared: open,
      cleanup: async () => {
        for (const f of opened) await f.close({ grace: 0 });
        dir.remove();
      },
    };
  },
};

export const STORES: readonly StoreUnderTest[] = [sqlite];
