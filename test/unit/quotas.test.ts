import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/core/errors.js";
import { type Admission, LaunchQuotas, type QuotaLimits } from "../../src/daemon/quotas.js";

/**
 * A store count under the test's control: `counts` per owner (0 when absent), and, while `held`,
 * reads wait until `release` answers them (with a given count, or the owner's count at that time).
 */
class FakeCount {
  readonly counts = new Map<string, number>();
  readonly calls: { owner: string; limit: number }[] = [];
  held = false;
  readonly #pending: { owner: string; resolve: (n: number) => void }[] = [];

  readonly countActive = (owner: string, limit: number): Promise<number> => {
    this.calls.push({ owner, limit });
    if (!this.held) return Promise.resolve(this.counts.get(owner) ?? 0);
    return new Promise<number>((resolve) => this.#pending.push({ owner, resolve }));
  };

  /** Jobs the store now has (stored launches). */
  add(owner: string, n: number): void {
    this.counts.set(owner, (this.counts.get(owner) ?? 0) + n);
  }

  get pending(): number {
    return this.#pending.length;
  }

  /** Answers every waiting read, then lets later reads answer at once. */
  release(count?: number): void {
    this.held = false;
    for (const { owner, resolve } of this.#pending.splice(0)) resolve(count ?? this.counts.get(owner) ?? 0);
  }
}

const quotaExceeded = { name: "FerryError", code: ErrorCode.QuotaExceeded };

function setup(limits: Partial<QuotaLimits>, options: { refreshMs?: number } = {}) {
  const clock = { now: 0 };
  const fake = new FakeCount();
  const quotas = new LaunchQuotas(
    { launchesPerMinute: 1_000_000, maxActive: 1_000_000, ...limits },
    fake.countActive,
    { now: () => clock.now, ...options },
  );

  /** Runs `admit` for each n at once; answers the admissions (unsettled) and the refusals. */
  const burst = async (user: string, ns: readonly number[]) => {
    const settled = await Promise.allSettled(ns.map((n) => quotas.admit(user, n)));
    const admitted = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const refused = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
    return { admitted, refused };
  };

  /** Stores admitted launches of one job each: the store has them, then `stored()`. */
  const store = (user: string, admissions: readonly Admission[]) => {
    fake.add(user, admissions.length);
    for (const admission of admissions) admission.stored();
  };

  /** Whether `admit(user, n)` succeeds now; when it does, the n jobs are stored. */
  const fits = async (user: string, n = 1): Promise<boolean> => {
    let admission: Admission;
    try {
      admission = await quotas.admit(user, n);
    } catch (error) {
      expect(error).toMatchObject(quotaExceeded);
      return false;
    }
    fake.add(user, n);
    admission.stored();
    return true;
  };

  return { clock, fake, quotas, burst, store, fits };
}

describe("launchesPerMinute", () => {
  it("admits exactly the rate from a parallel burst, and names the wait in each refusal", async () => {
    const { burst } = setup({ launchesPerMinute: 10 });
    const { admitted, refused } = await burst("u", Array(50).fill(1));
    expect(admitted).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const error of refused) {
      expect(error).toMatchObject(quotaExceeded);
      expect((error as Error).message).toBe("u may launch 10 jobs a minute: try again in 60 s");
    }
  });

  it("names the time left in the window, rounded up", async () => {
    const { clock, quotas, fits } = setup({ launchesPerMinute: 1 });
    expect(await fits("u")).toBe(true);
    clock.now = 30_000;
    await expect(quotas.admit("u", 1)).rejects.toThrow("try again in 30 s");
    clock.now = 59_500;
    await expect(quotas.admit("u", 1)).rejects.toThrow("try again in 1 s");
  });

  it("opens a new window 60 s after the previous one opened", async () => {
    const { clock, quotas, burst, fits } = setup({ launchesPerMinute: 3 });
    clock.now = 1_000;
    expect((await burst("u", [1, 1, 1, 1])).admitted).toHaveLength(3);
    clock.now = 60_999;
    expect(await fits("u")).toBe(false);
    clock.now = 61_000;
    const { admitted, refused } = await burst("u", [1, 1, 1, 1, 1]);
    expect(admitted).toHaveLength(3);
    expect(refused).toHaveLength(2);
    // The new window began at 61 s, when it was found expired: it ends at 121 s.
    clock.now = 120_999;
    await expect(quotas.admit("u", 1)).rejects.toThrow("try again in 1 s");
    clock.now = 121_000;
    expect(await fits("u")).toBe(true);
  });

  it("gives a refunded launch's slot back within its window", async () => {
    const { quotas, store, fits } = setup({ launchesPerMinute: 2 });
    const first = await quotas.admit("u", 1);
    store("u", [await quotas.admit("u", 1)]);
    expect(await fits("u")).toBe(false);
    first.refund();
    expect(await fits("u")).toBe(true);
    expect(await fits("u")).toBe(false);
  });

  it("does not let a refund from an expired window count against, or for, the new one", async () => {
    const { clock, burst, fits } = setup({ launchesPerMinute: 3 });
    const old = (await burst("u", [1, 1, 1])).admitted;
    expect(old).toHaveLength(3);
    clock.now = 60_000;
    // The new window opens with this launch; the old window's refunds must not free slots in it.
    expect(await fits("u", 2)).toBe(true);
    for (const admission of old) admission.refund();
    expect(await fits("u")).toBe(true);
    expect(await fits("u")).toBe(false);
    // Nor did they drive the count below zero: the next window holds exactly the rate again.
    clock.now = 120_000;
    expect((await burst("u", [1, 1, 1, 1])).admitted).toHaveLength(3);
  });

  it("refuses a launch of n that does not fit whole, and lets smaller ones through", async () => {
    const { fits } = setup({ launchesPerMinute: 10 });
    expect(await fits("u", 7)).toBe(true);
    // 3 left: 4 is refused whole and takes nothing.
    expect(await fits("u", 4)).toBe(false);
    expect(await fits("u", 2)).toBe(true);
    expect(await fits("u", 2)).toBe(false);
    expect(await fits("u", 1)).toBe(true);
    expect(await fits("u", 1)).toBe(false);
  });

  it("keeps each user's window apart", async () => {
    const { clock, quotas, burst, fits } = setup({ launchesPerMinute: 2 });
    expect((await burst("alice", [1, 1, 1])).admitted).toHaveLength(2);
    clock.now = 30_000;
    // bob's window opens at 30 s: alice's refusal does not touch it.
    expect((await burst("bob", [1, 1, 1])).admitted).toHaveLength(2);
    clock.now = 60_000;
    expect(await fits("alice")).toBe(true);
    await expect(quotas.admit("bob", 1)).rejects.toThrow("bob may launch 2 jobs a minute: try again in 30 s");
  });
});

describe("maxActive", () => {
  it("admits exactly what is left under the store's count from a parallel burst", async () => {
    const { fake, burst } = setup({ maxActive: 10 });
    fake.counts.set("u", 8);
    const { admitted, refused } = await burst("u", [1, 1, 1, 1, 1]);
    expect(admitted).toHaveLength(2);
    expect(refused).toHaveLength(3);
    for (const error of refused) {
      expect(error).toMatchObject(quotaExceeded);
      expect((error as Error).message).toBe("u may have 10 unfinished jobs: wait for some to finish");
    }
    // One read for the burst, asking no further than one past the limit.
    expect(fake.calls).toEqual([{ owner: "u", limit: 11 }]);
  });

  it("admits more once the jobs have finished and the count is read again", async () => {
    const { clock, fake, burst, store, fits } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 8);
    store("u", (await burst("u", [1, 1, 1])).admitted);
    expect(fake.counts.get("u")).toBe(10);
    expect(await fits("u")).toBe(false);
    // Everything finished (the two stored launches too).
    fake.counts.set("u", 0);
    clock.now = 1_001;
    const { admitted } = await burst("u", Array(12).fill(1));
    expect(admitted).toHaveLength(10);
  });

  it("reads the count again when it is older than refreshMs, not before", async () => {
    const { clock, fake, fits } = setup({ maxActive: 100 }, { refreshMs: 1_000 });
    expect(await fits("u")).toBe(true);
    clock.now = 1_000;
    expect(await fits("u")).toBe(true);
    expect(fake.calls).toHaveLength(1);
    clock.now = 1_001;
    expect(await fits("u")).toBe(true);
    expect(fake.calls).toHaveLength(2);
  });

  it("re-reads a count older than 100 ms before refusing, but refuses on a fresh one", async () => {
    const { clock, fake, quotas, fits } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 10);
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(1);
    // A job finished, but the count is 100 ms old at most: refused on it, without a read.
    fake.counts.set("u", 9);
    clock.now = 100;
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(1);
    // Older than 100 ms (though within refreshMs): read again, and the freed place is found.
    clock.now = 101;
    const launch = await quotas.admit("u", 1);
    expect(fake.calls).toHaveLength(2);
    // Full on the fresh count, with the admitted launch not stored yet: refused without a read.
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(2);
    launch.refund();
  });

  it("re-reads a fresh count before refusing once a job changed, at most every 10 ms", async () => {
    const { fake, quotas, fits, clock } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 10);
    expect(await fits("u")).toBe(false);
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(1);
    fake.counts.set("u", 9);
    quotas.noteJobChanged();
    // Within 10 ms of the last read, a change does not buy another one.
    clock.now += 9;
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(1);
    clock.now += 1;
    expect(await fits("u")).toBe(true);
    expect(fake.calls).toHaveLength(2);
  });

  it("refuses a batch larger than a quota ever allows without reading the store", async () => {
    const { fake, quotas } = setup({ maxActive: 5, launchesPerMinute: 100 });
    await expect(quotas.admit("u", 6)).rejects.toMatchObject({
      code: "FERRY_QUOTA_EXCEEDED",
      message: expect.stringContaining("more than u's quotas ever allow"),
    });
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses over the rate without reading the store", async () => {
    const { fake, quotas } = setup({ launchesPerMinute: 2 }, { refreshMs: 0 });
    (await quotas.admit("u", 2)).stored();
    const callsBefore = fake.calls.length;
    await expect(quotas.admit("u", 1)).rejects.toMatchObject({ code: "FERRY_QUOTA_EXCEEDED" });
    expect(fake.calls).toHaveLength(callsBefore);
  });

  it("re-reads a fresh count before refusing once a launch was stored since (it may have finished)", async () => {
    const { fake, quotas, fits } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 9);
    const launch = await quotas.admit("u", 1);
    expect(fake.calls).toHaveLength(1);
    // In flight, not stored: the count cannot have missed a finish, so a refusal needs no read.
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(1);
    // Stored, and finished at once: the store still says 9.
    launch.stored();
    expect(await fits("u")).toBe(true);
    expect(fake.calls).toHaveLength(2);
    // That launch is stored too, so the next refusal reads again (and the store has 10)...
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(3);
    // ... and that read knows every stored launch: the one after needs none.
    expect(await fits("u")).toBe(false);
    expect(fake.calls).toHaveLength(3);
  });

  it("refuses a launch of n that does not fit whole, and lets smaller ones through", async () => {
    const { fake, fits } = setup({ maxActive: 10 });
    fake.counts.set("u", 8);
    expect(await fits("u", 3)).toBe(false);
    expect(await fits("u", 2)).toBe(true);
    expect(await fits("u", 1)).toBe(false);
    expect(fake.counts.get("u")).toBe(10);
  });

  it("gives a refunded launch's place back", async () => {
    const { fake, burst, fits } = setup({ maxActive: 3 });
    fake.counts.set("u", 1);
    const { admitted } = await burst("u", [1, 1, 1]);
    expect(admitted).toHaveLength(2);
    admitted[0]!.refund();
    // Room on the cached count: no read needed.
    expect(await fits("u")).toBe(true);
    expect(fake.calls).toHaveLength(1);
    expect(await fits("u")).toBe(false);
  });

  it("stops counting a refunded launch on top of the next read", async () => {
    const { clock, fake, quotas, burst } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 6);
    (await quotas.admit("u", 2)).refund();
    clock.now = 1_001;
    const { admitted } = await burst("u", [1, 1, 1, 1, 1]);
    expect(fake.calls).toHaveLength(2);
    expect(admitted).toHaveLength(4);
  });

  it("dates a count from when its read began, not when it answered", async () => {
    const { clock, fake, quotas, fits } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.held = true;
    const first = quotas.admit("u", 1);
    clock.now = 900;
    fake.release(0);
    fake.add("u", 1);
    (await first).stored();
    // 1001 ms after the read began (101 after it answered): due again.
    clock.now = 1_001;
    expect(await fits("u")).toBe(true);
    expect(fake.calls).toHaveLength(2);
  });

  it("reads each user's count, and keeps their places apart", async () => {
    const { fake, burst } = setup({ maxActive: 5 });
    fake.counts.set("alice", 4);
    fake.counts.set("bob", 1);
    const [alice, bob] = await Promise.all([burst("alice", [1, 1, 1]), burst("bob", [1, 1, 1, 1, 1])]);
    expect(alice.admitted).toHaveLength(1);
    expect(bob.admitted).toHaveLength(4);
    expect(fake.calls.map((c) => c.owner).sort()).toEqual(["alice", "bob"]);
  });

  it("keeps counting launches admitted before a read but not yet stored", async () => {
    const { clock, fake, quotas, burst } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 6);
    const unstored = await quotas.admit("u", 2);
    clock.now = 1_001;
    // The store does not have those 2 yet: the new read's 6 leaves room for 2, not 4.
    const { admitted } = await burst("u", [1, 1, 1, 1]);
    expect(fake.calls).toHaveLength(2);
    expect(admitted).toHaveLength(2);
    unstored.refund();
  });

  it("counts launches admitted while a read is in flight on top of the count it answers", async () => {
    const { clock, fake, quotas, burst, store, fits } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 6);
    expect(await fits("u", 0)).toBe(true);
    expect(fake.calls).toHaveLength(1);

    // 200 ms later a launch of 5 does not fit on the cached count: it reads again, slowly.
    clock.now = 200;
    fake.held = true;
    const big = quotas.admit("u", 5);
    expect(fake.pending).toBe(1);

    // Meanwhile 4 launches fit on the cached count (6 + 4 = 10), are admitted at once, and stored.
    clock.now = 210;
    const during = await Promise.all([1, 2, 3, 4].map(() => quotas.admit("u", 1)));
    store("u", during);
    // A fifth does not fit: it waits for the read in flight rather than starting another.
    const fifth = quotas.admit("u", 1);
    expect(fake.calls).toHaveLength(2);
    expect(fake.pending).toBe(1);

    // The read answers 6: its snapshot missed the 4. They still count, so neither waiting launch fits.
    fake.release(6);
    await expect(big).rejects.toMatchObject(quotaExceeded);
    await expect(fifth).rejects.toMatchObject(quotaExceeded);
    // Nor does one more, on a read that sees them.
    expect(await fits("u")).toBe(false);
    expect(fake.counts.get("u")).toBe(10);

    // Once a job finished and the count is due again, exactly one more fits.
    fake.counts.set("u", 9);
    clock.now = 1_300;
    expect((await burst("u", [1, 1, 1])).admitted).toHaveLength(1);
  });

  it("gives back the places of launches refunded while a read is in flight", async () => {
    const { clock, fake, quotas, burst, store, fits } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 6);
    expect(await fits("u", 0)).toBe(true);
    clock.now = 200;
    fake.held = true;
    const big = quotas.admit("u", 5);
    clock.now = 210;
    const during = await Promise.all([1, 2, 3, 4].map(() => quotas.admit("u", 1)));
    during[0]!.refund();
    during[1]!.refund();
    store("u", during.slice(2));
    fake.release(6);
    await expect(big).rejects.toMatchObject(quotaExceeded);
    expect(fake.calls).toHaveLength(2);
    // 6 + the 2 stored during the read: room for 2, on that count (no read needed)...
    const more = [await quotas.admit("u", 1), await quotas.admit("u", 1)];
    expect(fake.calls).toHaveLength(2);
    store("u", more);
    // ... and no more, whatever a new read says.
    expect((await burst("u", [1, 1])).admitted).toHaveLength(0);
  });
});

describe("admissions", () => {
  it("count a refund once, however often it is called", async () => {
    const { burst, fits } = setup({ launchesPerMinute: 3 });
    const { admitted } = await burst("u", [1, 1, 1]);
    admitted[0]!.refund();
    admitted[0]!.refund();
    expect(await fits("u")).toBe(true);
    expect(await fits("u")).toBe(false);
  });

  it("ignore a refund after stored()", async () => {
    const { fake, quotas, fits } = setup({ launchesPerMinute: 3, maxActive: 10 });
    fake.counts.set("u", 6);
    const launch = await quotas.admit("u", 2);
    fake.add("u", 2);
    launch.stored();
    launch.refund();
    // The refund gave no slot back: one of the minute's 3 is left.
    expect(await fits("u", 2)).toBe(false);
    expect(await fits("u", 1)).toBe(true);
    expect(await fits("u", 1)).toBe(false);
  });

  it("keep launches in flight counted across a read when stored() is called twice", async () => {
    const { clock, fake, quotas, burst } = setup({ maxActive: 10 }, { refreshMs: 1_000 });
    fake.counts.set("u", 6);
    const stored = await quotas.admit("u", 2);
    fake.add("u", 2);
    stored.stored();
    stored.stored();
    const unstored = await quotas.admit("u", 1);
    // The store has the 2 stored, not the 1 in flight: 8 + 1 leaves room for 1 (a second
    // stored() counted would make it -1 in flight, and room for 3).
    clock.now = 1_001;
    const { admitted } = await burst("u", [1, 1, 1]);
    expect(fake.calls).toHaveLength(2);
    expect(admitted).toHaveLength(1);
    unstored.refund();
  });
});

describe("store reads", () => {
  it("are shared by concurrent admissions of one user", async () => {
    const { fake, quotas } = setup({ launchesPerMinute: 100, maxActive: 100 });
    fake.held = true;
    const pending = Array.from({ length: 20 }, () => quotas.admit("u", 1));
    expect(fake.calls).toHaveLength(1);
    expect(fake.pending).toBe(1);
    fake.release(0);
    const admitted: Admission[] = await Promise.all(pending);
    expect(admitted).toHaveLength(20);
    expect(fake.calls).toEqual([{ owner: "u", limit: 101 }]);
  });

  it("fail the admissions waiting on them when the store fails, and are tried again next time", async () => {
    const clock = { now: 0 };
    let fail = true;
    let calls = 0;
    const quotas = new LaunchQuotas(
      { launchesPerMinute: 10, maxActive: 10 },
      async () => {
        calls++;
        if (fail) throw new Error("store down");
        return 0;
      },
      { now: () => clock.now },
    );
    const settled = await Promise.allSettled([quotas.admit("u", 1), quotas.admit("u", 1)]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
    expect(calls).toBe(1);
    fail = false;
    await expect(quotas.admit("u", 1)).resolves.toBeDefined();
    expect(calls).toBe(2);
  });
});
