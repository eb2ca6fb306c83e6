/**
 * The scheduler's gate on every store: a due schedule the gate holds back is paused with the
 * gate's reason and fires nothing; a resume clears the reason and fires the missed tick once; a
 * user's pause has no reason. A worker given `firingGate` applies it on its own ticks.
 */
import { describe, expect, it } from "vitest";
import type { Ferry } from "../../src/index.js";
import { type FiringGate, gatedFiring } from "../../src/scheduler/fire.js";
import { useStore } from "../conformance/setup.js";
import { STORES } from "../conformance/stores.js";
import { collect, eventually } from "../helpers/temp.js";

const REASON = "its owner is not granted gated.job";
/** Holds back alice's schedules; lets everyone else's (and ownerless ones) fire. */
const notAlice: FiringGate = (owner) => (owner === "alice" ? REASON : undefined);

const jobsOf = async (ferry: Ferry, handler: string) => collect(ferry.list({ handler }));

describe.each(STORES)("the schedule firing gate on $name", (store) => {
  const t = useStore(store);

  /** A schedule of `owner` (none: the library's own) whose tick is due now. */
  async function due(name: string, owner?: string) {
    const s = await t.ferry.schedule(name, { every: "1h" }, null, owner === undefined ? {} : { owner });
    await t.ferry.schedules.update(s.id, { nextRunAt: new Date(Date.now() - 1_000) });
    return s;
  }

  it("pauses a held-back schedule with the reason, and fires it once after a resume", async () => {
    const held = await due("gated.job", "alice");
    const free = await due("free.job", "bob");
    const ownerless = await due("library.job");

    expect(await t.ferry.store.fireDueSchedules(gatedFiring(notAlice))).toBe(2);
    expect(await t.ferry.schedules.get(held.id)).toMatchObject({ paused: true, pausedReason: REASON });
    expect(await jobsOf(t.ferry, "gated.job")).toHaveLength(0);
    expect(await jobsOf(t.ferry, "free.job")).toHaveLength(1);
    expect(await jobsOf(t.ferry, "library.job")).toHaveLength(1);
    expect(await t.ferry.schedules.get(free.id)).toMatchObject({ paused: false, pausedReason: null });
    expect(await t.ferry.schedules.get(ownerless.id)).toMatchObject({ paused: false, pausedReason: null });

    // Paused, it is not even asked about again.
    expect(await t.ferry.store.fireDueSchedules(gatedFiring(() => "asked"))).toBe(0);
    expect(await t.ferry.schedules.get(held.id)).toMatchObject({ pausedReason: REASON });

    const resumed = await t.ferry.schedules.resume(held.id);
    expect(resumed).toMatchObject({ paused: false, pausedReason: null });
    expect(await t.ferry.store.fireDueSchedules(gatedFiring(() => undefined))).toBe(1);
    expect(await jobsOf(t.ferry, "gated.job")).toHaveLength(1);

    // A user's pause carries no reason; a replacement by name clears one.
    expect(await t.ferry.schedules.pause(held.id)).toMatchObject({ paused: true, pausedReason: null });
    await due("gated.job", "alice");
    await t.ferry.store.fireDueSchedules(gatedFiring(notAlice));
    expect(await t.ferry.schedules.get(held.id)).toMatchObject({ paused: true, pausedReason: REASON });
    expect(
      (await t.ferry.schedule("gated.job", { every: "1h" }, null, { owner: "alice" })).pausedReason,
    ).toBeNull();
  });

  it("is applied by a worker given firingGate", async () => {
    const held = await due("gated.job", "alice");
    const worker = t.ferry.worker({
      pollInterval: "50ms",
      rescueInterval: "200ms",
      firingGate: notAlice,
      handlers: { "gated.job": async () => 1 },
    });
    await worker.start();
    try {
      await eventually(async () => (await t.ferry.schedules.get(held.id)).paused, "the worker to pause it");
      expect((await t.ferry.schedules.get(held.id)).pausedReason).toBe(REASON);
      expect(await jobsOf(t.ferry, "gated.job")).toHaveLength(0);
    } finally {
      await worker.stop();
    }
  });
});
