/** Ferry on its SQLite store, in a fresh temp directory per setup (the driver itself: ferry-driver.ts). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CreateDriver } from "../driver.js";
import { createFerryDriver } from "./ferry-driver.js";

export const createDriver: CreateDriver = () =>
  createFerryDriver({
    name: "ferry-sqlite",
    notes: { store: "sqlite: (Ferry's defaults for journal and synchronous)" },
    store: () => {
      let dir = "";
      return {
        async create() {
          dir = mkdtempSync(join(tmpdir(), "ferry-bench-ferry-"));
          return `sqlite:${join(dir, "ferry.db")}`;
        },
        async remove() {
          if (dir) rmSync(dir, { recursive: true, force: true });
          dir = "";
        },
      };
    },
  });
