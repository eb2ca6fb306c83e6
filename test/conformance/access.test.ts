import { describe, expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";
import { useStore } from "./setup.js";
import { STORES } from "./stores.js";

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));

/**
 * The stored document as revision and text. Compared this way, not as Uint8Arrays, because the
 * stores answer with different Uint8Array subclasses (NATS: a Buffer; SQL stores: a Uint8Array).
 */
async function read(store: Store): Promise<{ revision: number; text: string } | undefined> {
  const doc = await store.readAccess();
  if (doc === undefined) return undefined;
  expect(doc.data).toBeInstanceOf(Uint8Array);
  return { revision: doc.revision, text: Buffer.from(doc.data).toString("utf8") };
}

describe.each(STORES)("the access document on $name", (store) => {
  const t = useStore(store);

  it("is absent on a fresh store", async () => {
    expect(await t.ferry.store.readAccess()).toBeUndefined();
  });

  it("is created at expected revision 0, once", async () => {
    const first = await t.ferry.store.writeAccess(bytes("first"), 0);
    expect(first).toEqual(expect.any(Number));
    expect(first).toBeGreaterThan(0);
    expect(await read(t.ferry.store)).toEqual({ revision: first, text: "first" });

    // A second create finds the document there and changes nothing.
    expect(await t.ferry.store.writeAccess(bytes("second"), 0)).toBeNull();
    expect(await read(t.ferry.store)).toEqual({ revision: first, text: "first" });
  });

  it("updates at the current revision, and refuses a stale one", async () => {
    const r1 = (await t.ferry.store.writeAccess(bytes("one"), 0))!;
    const r2 = await t.ferry.store.writeAccess(bytes("two"), r1);
    expect(r2).not.toBeNull();
    expect(r2!).toBeGreaterThan(r1);
    const r3 = await t.ferry.store.writeAccess(bytes("three"), r2!);
    expect(r3).not.toBeNull();
    expect(r3!).toBeGreaterThan(r2!);
    expect(await read(t.ferry.store)).toEqual({ revision: r3, text: "three" });

    // r1 and r2 are stale now, and a revision that never existed is no better.
    expect(await t.ferry.store.writeAccess(bytes("stale-1"), r1)).toBeNull();
    expect(await t.ferry.store.writeAccess(bytes("stale-2"), r2!)).toBeNull();
    expect(await t.ferry.store.writeAccess(bytes("future"), r3! + 1000)).toBeNull();
    expect(await read(t.ferry.store)).toEqual({ revision: r3, text: "three" });
  });

  it("refuses an update before anything was written", async () => {
    expect(await t.ferry.store.writeAccess(bytes("x"), 1)).toBeNull();
    expect(await t.ferry.store.readAccess()).toBeUndefined();
  });

  it("lets exactly one of many concurrent creators win", async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => t.ferry.store.writeAccess(bytes(`creator-${i}`), 0)),
    );
    const winners = answers.flatMap((revision, i) => (revision === null ? [] : [{ revision, i }]));
    expect(winners).toHaveLength(1);
    const [winner] = winners;
    expect(await read(t.ferry.store)).toEqual({ revision: winner!.revision, text: `creator-${winner!.i}` });
  });

  it("lets exactly one of many concurrent updaters win, across two Ferrys", async () => {
    const other = await t.shared();
    const base = (await t.ferry.store.writeAccess(bytes("base"), 0))!;
    const stores = [t.ferry.store, other.store];
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => stores[i % 2]!.writeAccess(bytes(`writer-${i}`), base)),
    );
    const winners = answers.flatMap((revision, i) => (revision === null ? [] : [{ revision, i }]));
    expect(winners).toHaveLength(1);
    const [winner] = winners;
    expect(winner!.revision).toBeGreaterThan(base);
    const expected = { revision: winner!.revision, text: `writer-${winner!.i}` };
    expect(await read(t.ferry.store)).toEqual(expected);
    expect(await read(other.store)).toEqual(expected);
  });

  it("is shared with another Ferry on the same store", async () => {
    const other = await t.shared();
    expect(await other.store.readAccess()).toBeUndefined();
    const r1 = (await t.ferry.store.writeAccess(bytes("from the first"), 0))!;
    expect(await read(other.store)).toEqual({ revision: r1, text: "from the first" });
    expect(await other.store.writeAccess(bytes("create again"), 0)).toBeNull();

    // And back: the second writes on top of the first's revision, the first reads it.
    const r2 = await other.store.writeAccess(bytes("from the second"), r1);
    expect(r2).not.toBeNull();
    expect(await read(t.ferry.store)).toEqual({ revision: r2, text: "from the second" });
    expect(await t.ferry.store.writeAccess(bytes("stale"), r1)).toBeNull();
    expect(await read(other.store)).toEqual({ revision: r2, text: "from the second" });
  });

  it("keeps the data byte for byte", async () => {
    // Every byte value, invalid UTF-8 included, and some real non-ASCII text.
    const data = new Uint8Array([
      ...Array.from({ length: 256 }, (_, i) => i),
      0,
      0,
      0xff,
      0xfe,
      0xc3,
      0x28,
      ...Buffer.from('{"name":"Zoë 漢字 🚀"}\n', "utf8"),
    ]);
    const revision = (await t.ferry.store.writeAccess(data, 0))!;
    const doc = await t.ferry.store.readAccess();
    expect(doc?.revision).toBe(revision);
    expect(doc?.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(doc!.data).toString("hex")).toBe(Buffer.from(data).toString("hex"));

    // A larger document (a few thousand users' worth), read by another Ferry.
    const large = new Uint8Array(256 * 1024).map((_, i) => (i * 31 + 7) % 256);
    const next = (await t.ferry.store.writeAccess(large, revision))!;
    const largeDoc = await (await t.shared()).store.readAccess();
    expect(largeDoc?.revision).toBe(next);
    expect(largeDoc!.data.byteLength).toBe(large.byteLength);
    expect(Buffer.from(largeDoc!.data).equals(Buffer.from(large))).toBe(true);
  });
});
