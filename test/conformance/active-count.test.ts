import { describe, expect, it } from "vitest";
import type { LaunchedHandle } from "../../src/index.js";
import { eventually } from "../helpers/temp.js";
import { useStore } from "./setup.js";
import { STORES } from "./stores.js";

describe.each(STORES)("counting a user's unfinished jobs on $name", (store) => {
  const t = useStore(store);

  /** No worker runs yet: launched jobs stay queued (or scheduled, with a delay). */
  const launchAll = async () => {
    const alice: LaunchedHandle[] = [];
    for (let i = 0; i < 3; i++) alice.push(await t.ferry.launch("demo.x", { i }, { owner: "alice" }));
    const bob = await t.ferry.launch("demo.x", {}, { owner: "bob" });
    const nobody = await t.ferry.launch("demo.x", {});
    const later = await t.ferry.launch("demo.x", {}, { owner: "alice", delay: "1h" });
    return { alice, bob, nobody, later };
  };

  it("counts scheduled and queued jobs per owner, up to the limit", async () => {
    const { alice, later } = await launchAll();
    for (const h of alice) expect((await t.ferry.status(h)).state).toBe("queued");
    expect((await t.ferry.status(later)).state).toBe("scheduled");

    expect(await t.ferry.store.countActive("alice", 100)).toBe(4);
    expect(await t.ferry.store.countActive("alice", 4)).toBe(4);
    expect(await t.ferry.store.countActive("alice", 2)).toBe(2);
    expect(await t.ferry.store.countActive("alice", 1)).toBe(1);
    expect(await t.ferry.store.countActive("alice", 0)).toBe(0);
    expect(await t.ferry.store.countActive("bob", 100)).toBe(1);
    expect(await t.ferry.store.countActive("nobody", 100)).toBe(0);
    // Owners are matched exactly.
    expect(await t.ferry.store.countActive("Alice", 100)).toBe(0);
    expect(await t.ferry.store.countActive("ali", 100)).toBe(0);
  });

  it("leaves a cancelled job out", async () => {
    const { alice } = await launchAll();
    expect(await t.ferry.cancel(alice[0]!)).toBe("cancelled");
    expect(await t.ferry.store.countActive("alice", 100)).toBe(3);
    expect(await t.ferry.store.countActive("bob", 100)).toBe(1);
  });

  it("leaves completed jobs out, and keeps the scheduled one", async () => {
    const { alice, bob, nobody, later } = await launchAll();
    await t.ferry.cancel(alice[0]!);
    const worker = t.ferry.worker({ handlers: { "demo.x": async () => 1 }, pollInterval: "50ms" });
    await worker.start();
    try {
      await t.ferry.drain([alice[1]!, alice[2]!, bob, nobody], { timeout: "10s" });
      await eventually(
        async () => (await t.ferry.store.countActive("alice", 100)) === 1,
        "alice's count to drop to her scheduled job",
      );
    } finally {
      await worker.stop();
    }
    for (const h of [alice[1]!, alice[2]!, bob, nobody])
      expect((await t.ferry.status(h)).state).toBe("completed");
    expect((await t.ferry.status(later)).state).toBe("scheduled");
    expect(await t.ferry.store.countActive("alice", 100)).toBe(1);
    expect(await t.ferry.store.countActive("bob", 100)).toBe(0);
  });

  it("counts running jobs", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const running: string[] = [];
    const worker = t.ferry.worker({
      handlers: {
        "demo.x": async (p: { i: number }) => {
          running.push(String(p.i));
          await gate;
          return 1;
        },
      },
      pollInterval: "50ms",
    });
    const handles = [
      await t.ferry.launch("demo.x", { i: 1 }, { owner: "carol" }),
      await t.ferry.launch("demo.x", { i: 2 }, { owner: "carol" }),
    ];
    await worker.start();
    try {
      await eventually(() => running.length === 2, "both jobs to start");
      for (const h of handles) expect((await t.ferry.status(h)).state).toBe("running");
      expect(await t.ferry.store.countActive("carol", 100)).toBe(2);
      release();
      await t.ferry.drain(handles, { timeout: "10s" });
      await eventually(
        async () => (await t.ferry.store.countActive("carol", 100)) === 0,
        "carol's count to drop to 0",
      );
    } finally {
      release();
      await worker.stop();
    }
  });
});
