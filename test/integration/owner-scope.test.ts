/**
 * `ferry.as(owner)`: every handle call answers another owner's job as a wrong cookie, launches
 * carry the owner, sweeps and lists reach the owner's jobs, schedules the owner's schedules.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ferry } from "../../src/api/ferry.js";
import { collect, tempDir } from "../helpers/temp.js";

describe("owner scope", () => {
  const dir = tempDir();
  let ferry: Ferry;
  beforeAll(async () => {
    ferry = await Ferry.open({ store: `sqlite:${join(dir.path, "scope.db")}` });
  });
  afterAll(async () => {
    await ferry.close();
    dir.remove();
  });

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => "ok",
      (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
    );

  it("answers another owner's job exactly as a wrong cookie, on every handle call", async () => {
    const ann = ferry.as("ann");
    const bob = ferry.as("bob");
    const handle = await ann.launch("ferry.echo", 1, { queue: "parked" });
    expect((await ann.status(handle)).owner).toBe("ann");
    const wrongCookie = { id: handle.id, cookie: "A".repeat(22) };
    const notFound = await failure(ann.status(wrongCookie));
    expect(notFound).toBe("FERRY_NOT_FOUND: no such job");
    const calls: ((f: typeof bob) => Promise<unknown>)[] = [
      (f) => f.status(handle),
      (f) => f.result(handle),
      (f) => f.resultOrState(handle),
      (f) => f.wait(handle, { timeout: "10ms" }),
      (f) => f.waitAny([handle], { timeout: "10ms" }),
      (f) => f.drain([handle], { timeout: "10ms" }),
      (f) => f.cancel(handle),
      (f) => f.detach(handle),
      (f) => f.retry(handle),
      (f) => collect(f.watch(handle)),
    ];
    for (const call of calls) expect(await failure(call(bob))).toBe(notFound);
    expect(await bob.outcome(handle)).toEqual({
      state: "not_found",
      error: { code: "FERRY_NOT_FOUND", message: "no such job" },
    });
    expect(await ann.outcome(handle)).toEqual({ id: handle.id, state: "queued" });
    // The unscoped Ferry takes the same check as an option.
    expect(await failure(ferry.result(handle, { owner: "bob" }))).toBe(notFound);
    expect(await ann.cancel(handle, { grace: 0 })).toBe("cancelled");
  });

  it("lists and sweeps the owner's jobs only", async () => {
    await ferry.as("carl").launch("ferry.echo", 1, { queue: "parked", label: "sweep" });
    await ferry.as("dora").launch("ferry.echo", 1, { queue: "parked", label: "sweep" });
    expect((await collect(ferry.as("carl").list())).map((r) => r.owner)).toEqual(["carl"]);
    expect(await ferry.as("carl").cancelAll({ label: "sweep" })).toBe(1);
    expect((await collect(ferry.as("dora").list({ state: "queued" }))).length).toBe(1);
  });

  it("keeps schedules to their owner, and shows the owner", async () => {
    const made = await ferry.as("erin").schedule("erin.report", { every: "1h" });
    expect(made.owner).toBe("erin");
    expect((await ferry.schedules.get(made.id)).owner).toBe("erin");
    const frank = ferry.as("frank").schedules;
    expect(await frank.list()).toEqual([]);
    for (const call of [
      () => frank.get(made.id),
      () => frank.pause(made.id),
      () => frank.resume(made.id),
      () => frank.update(made.id, { every: "2h" }),
      () => frank.cancel(made.id),
    ]) {
      expect(await failure(call())).toBe("FERRY_NOT_FOUND: no such schedule");
    }
    expect(await failure(frank.create("erin.report", { every: "1h" }))).toBe(
      "FERRY_PERMISSION_DENIED: a schedule of this name belongs to another user",
    );
    expect((await ferry.as("erin").schedules.pause(made.id)).paused).toBe(true);
  });
});
