import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ferry } from "../../src/index.js";
import type { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../helpers/temp.js";

describe("SQLite settings", () => {
  it.each([
    [undefined, 1],
    [false, 1],
    [true, 2],
  ])(
    "durable=%s sets synchronous=%i (1 NORMAL, 2 FULL), with WAL and a busy timeout",
    async (durable, expected) => {
      const dir = tempDir();
      const ferry = await Ferry.open({
        store: `sqlite:${join(dir.path, "s.db")}`,
        ...(durable === undefined ? {} : { durable }),
      });
      try {
        const settings = (ferry.store as SqliteStore).settings();
        expect(settings.synchronous).toBe(expected);
        expect(settings.journalMode).toBe("wal");
        expect(settings.busyTimeoutMs).toBeGreaterThan(0);
        // Checkpoints run on the background thread, not inside commits.
        expect(settings.walAutocheckpoint).toBe(0);
      } finally {
        await ferry.close();
        dir.remove();
      }
    },
  );

  it("refuses to work on an unmigrated file with FERRY_STORE_UNAVAILABLE, and works once migrated", async () => {
    const dir = tempDir();
    const store = `sqlite:${join(dir.path, "m.db")}`;
    const raw = await Ferry.open({ store, migrate: false });
    try {
      await expect(raw.launch("x.y", {})).rejects.toMatchObject({ code: "FERRY_STORE_UNAVAILABLE" });
      await expect(raw.pauseQueue("q")).rejects.toMatchObject({ code: "FERRY_STORE_UNAVAILABLE" });
    } finally {
      await raw.close();
    }
    const migrated = await Ferry.open({ store });
    await migrated.close();
    const again = await Ferry.open({ store, migrate: false });
    try {
      expect((await again.launch("x.y", {})).id).toBeTruthy();
    } finally {
      await again.close();
      dir.remove();
    }
  });
});
