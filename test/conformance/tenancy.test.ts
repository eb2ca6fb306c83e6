/**
 * Owners do not meet through a store: a uniqueKey is unique within its owner's jobs, and a job
 * depends only on jobs of its own owner. Held on every store, by the store itself.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, FerryError } from "../../src/index.js";
import { plainNewJob } from "../helpers/new-job.js";
import { useSubject } from "./setup.js";
import { LIBRARY_SUBJECTS, SUBJECTS } from "./stores.js";

/** The error a call ends with, as code and message (a call that succeeds fails the test). */
async function refusal(work: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await work;
  } catch (error) {
    if (error instanceof FerryError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("the call succeeded");
}

const UNKNOWN = { id: "01900000-0000-7000-8000-000000000000", cookie: "AAAAAAAAAAAAAAAAAAAAAA" };
const NOT_FOUND = { code: ErrorCode.NotFound, message: "no such job" };

describe.each(SUBJECTS)("a caller among owners on $name", (subject) => {
  const t = useSubject(subject);

  it("keeps a caller's uniqueKey apart from another owner's job with the same key", async () => {
    // Alice's job, launched by a process that holds the store; the caller is not alice (the
    // library's own launches have no owner, the daemon's are its caller's).
    const alice = await t.ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42", owner: "alice" });
    const mine = await t.api.launch("welcome.send", {}, { uniqueKey: "welcome:42" });
    expect(mine.deduplicated).toBe(false);
    expect(mine.id).not.toBe(alice.id);
    expect((await t.api.status(mine)).state).toBe("queued");
    expect(await t.api.launch("welcome.send", {}, { uniqueKey: "welcome:42" })).toEqual({
      id: mine.id,
      cookie: "",
      deduplicated: true,
    });
    // Alice's key lets go when her job ends; the caller's holds on.
    await t.ferry.cancel(alice);
    expect((await t.api.launch("welcome.send", {}, { uniqueKey: "welcome:42" })).id).toBe(mine.id);
    expect(
      (await t.ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42", owner: "alice" })).deduplicated,
    ).toBe(false);
  });
});

/** Owners given by the process that holds the store (a daemon gives its caller's): the library's side. */
describe.each(LIBRARY_SUBJECTS)("owners on $name", (subject) => {
  const t = useSubject(subject);

  it("scopes a uniqueKey to its owner: two owners get two jobs, each owner its own job back", async () => {
    const { ferry } = t;
    const alice = await ferry.launch(
      "welcome.send",
      { to: "a" },
      { uniqueKey: "welcome:42", owner: "alice" },
    );
    const bob = await ferry.launch("welcome.send", { to: "b" }, { uniqueKey: "welcome:42", owner: "bob" });
    expect(alice.deduplicated).toBe(false);
    expect(bob.deduplicated).toBe(false);
    expect(bob.id).not.toBe(alice.id);
    expect(bob.cookie).not.toBe("");
    // Bob's job is stored and his: his handle reaches it.
    expect((await ferry.status(bob)).owner).toBe("bob");

    const aliceAgain = await ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42", owner: "alice" });
    const bobAgain = await ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42", owner: "bob" });
    expect(aliceAgain).toEqual({ id: alice.id, cookie: "", deduplicated: true });
    expect(bobAgain).toEqual({ id: bob.id, cookie: "", deduplicated: true });

    // Launches without an owner (the library's own) share one scope of their own.
    const plain = await ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42" });
    expect(plain.deduplicated).toBe(false);
    expect([alice.id, bob.id]).not.toContain(plain.id);
    expect((await ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42" })).id).toBe(plain.id);

    // In one batch too, and a finished job lets its owner's key go, not the other's.
    const batch = await ferry.launchMany([
      { handler: "welcome.send", options: { uniqueKey: "batch", owner: "alice" } },
      { handler: "welcome.send", options: { uniqueKey: "batch", owner: "bob" } },
      { handler: "welcome.send", options: { uniqueKey: "batch", owner: "alice" } },
    ]);
    expect(batch.map((h) => h.deduplicated)).toEqual([false, false, true]);
    expect(batch[2]!.id).toBe(batch[0]!.id);
    await ferry.cancel(alice);
    const aliceThird = await ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42", owner: "alice" });
    expect(aliceThird.deduplicated).toBe(false);
    expect((await ferry.launch("welcome.send", {}, { uniqueKey: "welcome:42", owner: "bob" })).id).toBe(
      bob.id,
    );

    const stored = [];
    for await (const row of ferry.list({ handler: "welcome.send" })) stored.push(row.id);
    expect(stored.sort()).toEqual(
      [alice.id, bob.id, plain.id, batch[0]!.id, batch[1]!.id, aliceThird.id].sort(),
    );
  });

  it("keeps each owner's key unique under concurrent launches from two clients", async () => {
    const other = await t.shared();
    const owners = ["alice", "bob"];
    const launches = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 3 === 0 ? t.ferry : other).launch(
          "race.job",
          { i },
          { uniqueKey: "race", owner: owners[i % 2]! },
        ),
      ),
    );
    expect(launches.filter((h) => !h.deduplicated)).toHaveLength(2);
    const idsOf = (owner: number) => new Set(launches.filter((_, i) => i % 2 === owner).map((h) => h.id));
    expect(idsOf(0).size).toBe(1);
    expect(idsOf(1).size).toBe(1);
    expect([...idsOf(0)][0]).not.toBe([...idsOf(1)][0]);
  });

  it("retries a job while another owner's unfinished job holds the same key", async () => {
    const alice = await t.ferry.launch("demo.job", {}, { uniqueKey: "nightly", owner: "alice" });
    await t.ferry.cancel(alice);
    const bob = await t.ferry.launch("demo.job", {}, { uniqueKey: "nightly", owner: "bob" });
    expect(bob.deduplicated).toBe(false);
    await t.ferry.retry(alice);
    expect((await t.ferry.status(alice)).state).toBe("queued");
    expect((await t.ferry.status(bob)).state).toBe("queued");
  });

  it("depends only on its owner's jobs: another owner's parent answers as an unknown handle and stores nothing", async () => {
    const { ferry } = t;
    const parent = await ferry.launch("demo.parent", {}, { owner: "alice" });
    const before = (await ferry.stats()).launched;

    const unknown = await refusal(ferry.launch("demo.child", {}, { owner: "bob", dependsOn: [UNKNOWN] }));
    const foreign = await refusal(ferry.launch("demo.child", {}, { owner: "bob", dependsOn: [parent] }));
    expect(unknown).toEqual(NOT_FOUND);
    expect(foreign).toEqual(unknown);
    // Whatever else is wrong with the launch: the parent is looked at first, for both alike.
    expect(
      await refusal(ferry.launch("demo.child", { f: () => 1 }, { owner: "bob", dependsOn: [parent] })),
    ).toEqual(NOT_FOUND);
    expect(
      await refusal(
        ferry.launchMany([
          { handler: "demo.free", options: { owner: "bob" } },
          { handler: "demo.child", options: { owner: "bob", dependsOn: [parent] } },
        ]),
      ),
    ).toEqual(NOT_FOUND);
    expect(await refusal(ferry.submit("demo.child", {}, { owner: "bob", dependsOn: [parent] }))).toEqual(
      NOT_FOUND,
    );
    expect((await ferry.stats()).launched).toBe(before);
    const bobs = [];
    for await (const row of ferry.list({ owner: "bob" })) bobs.push(row);
    expect(bobs).toEqual([]);

    // Its owner's launch links to it; so does the library's own (it has no users to keep apart).
    const mine = await ferry.launch("demo.child", {}, { owner: "alice", dependsOn: [parent] });
    const library = await ferry.launch("demo.child", {}, { dependsOn: [parent] });
    await ferry.cancel(parent);
    expect((await ferry.wait(mine, { timeout: "10s" })).errorInfo?.code).toBe("FERRY_DEPENDENCY_FAILED");
    expect((await ferry.wait(library, { timeout: "10s" })).errorInfo?.code).toBe("FERRY_DEPENDENCY_FAILED");
  });

  it("status as an owner answers another owner's job as an unknown handle", async () => {
    const alices = await t.ferry.launch("demo.job", {}, { owner: "alice" });
    expect((await t.ferry.status(alices, { owner: "alice" })).id).toBe(alices.id);
    expect(await refusal(t.ferry.status(alices, { owner: "bob" }))).toEqual(NOT_FOUND);
    expect(await refusal(t.ferry.status(UNKNOWN, { owner: "bob" }))).toEqual(NOT_FOUND);
  });

  it("refuses, inside its own write, a parent of another owner or none, storing nothing", async () => {
    const { store } = t.ferry;
    const parent = await t.ferry.launch("demo.parent", {}, { owner: "alice" });
    const before = (await t.ferry.stats()).launched;
    const free = plainNewJob("demo.free", "default", { owner: "bob" });
    for (const dependsOn of [[parent.id], ["01900000-0000-7000-8000-0000000000ff"]]) {
      const child = plainNewJob("demo.child", "default", { owner: "bob", dependsOn });
      expect(await refusal(store.enqueue([free, child]))).toEqual(NOT_FOUND);
      expect(await store.getJob(child.id)).toBeUndefined();
      expect(await store.getJob(free.id)).toBeUndefined();
    }
    expect((await t.ferry.stats()).launched).toBe(before);
    // The same owner's child is stored.
    const child = plainNewJob("demo.child", "default", { owner: "alice", dependsOn: [parent.id] });
    expect(await store.enqueue([child])).toEqual([{ id: child.id, deduplicated: false }]);
  });
});
