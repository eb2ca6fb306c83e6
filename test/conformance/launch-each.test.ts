import { describe, expect, it, vi } from "vitest";
import { ErrorCode, type FerryError } from "../../src/index.js";
import { useStore } from "./setup.js";
import { STORES } from "./stores.js";

describe.each(STORES)("launchEach on $name", (store) => {
  const t = useStore(store);

  it("stores the good jobs in one store write and refuses the bad ones alone, in order", async () => {
    const enqueue = vi.spyOn(t.ferry.store, "enqueue");
    const parent = await t.ferry.launch("demo.parent", {});
    enqueue.mockClear();
    const settled = await t.ferry.launchEach([
      { handler: "demo.a", payload: { n: 0 } },
      { handler: "demo.a", payload: { n: 1 }, options: { attempts: 0 } },
      { handler: "demo.a", payload: { n: 2 }, submit: true },
      { handler: "not a handler!", payload: { n: 3 } },
      {
        handler: "demo.a",
        payload: { n: 4 },
        options: { dependsOn: [{ id: parent.id, cookie: "A".repeat(22) }] },
      },
      { handler: "demo.a", payload: { n: 5 }, options: { uniqueKey: "once" } },
      { handler: "demo.a", payload: { n: 6 }, options: { uniqueKey: "once" } },
    ]);
    expect(enqueue).toHaveBeenCalledTimes(1);
    expect(enqueue.mock.calls[0]![0]).toHaveLength(4);
    expect(settled.map((s) => (s.ok ? "ok" : s.error.code))).toEqual([
      "ok",
      ErrorCode.InvalidArgument,
      "ok",
      ErrorCode.InvalidArgument,
      ErrorCode.NotFound,
      "ok",
      "ok",
    ]);
    const handleOf = (i: number) => {
      const s = settled[i]!;
      if (!s.ok) throw new Error(`job ${i} was refused`);
      return s.handle;
    };
    expect(handleOf(0).cookie).toHaveLength(22);
    expect((await t.ferry.status(handleOf(0))).state).toBe("queued");
    // The submitted job has no cookie and no handle reaches it.
    expect(handleOf(2).cookie).toBe("");
    expect((await t.ferry.store.getJob(handleOf(2).id))?.detached).toBe(true);
    // The second job with the same unique key in one batch is the first one again.
    expect(handleOf(6)).toEqual({ id: handleOf(5).id, cookie: "", deduplicated: true });
    expect((settled[1] as { error: FerryError }).error.message).toMatch(/attempts/);
  });

  it("refuses a caller's transaction and anything that is not a list", async () => {
    const [settled] = await t.ferry.launchEach([{ handler: "demo.a", options: { tx: {} } }]);
    expect(settled).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidArgument } });
    await expect(t.ferry.launchEach({} as never)).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(await t.ferry.launchEach([])).toEqual([]);
  });
});
