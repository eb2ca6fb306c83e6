import { describe, expect, it } from "vitest";
import { clientKey } from "../../src/auth/client-address.js";
import { DEFAULT_FAILED_AUTH_LIMITS, FailedAuthLimiter } from "../../src/auth/failed-auth-limiter.js";

/** A limiter on a clock the test moves by hand. */
function limiter(limits: Partial<typeof DEFAULT_FAILED_AUTH_LIMITS>) {
  const clock = { now: 1_000_000 };
  return { clock, limiter: new FailedAuthLimiter(limits, () => clock.now) };
}

describe("FailedAuthLimiter", () => {
  it("lets an address try until it has failed maxFailures times within the window", () => {
    const { clock, limiter: l } = limiter({ maxFailures: 3, windowMs: 10_000 });
    expect(l.blockedForMs("10.0.0.1")).toBe(0);
    l.recordFailure("10.0.0.1");
    clock.now += 1_000;
    l.recordFailure("10.0.0.1");
    expect(l.blockedForMs("10.0.0.1")).toBe(0);
    clock.now += 1_000;
    l.recordFailure("10.0.0.1");
    // The window began at the first failure, 2 s ago.
    expect(l.blockedForMs("10.0.0.1")).toBe(8_000);
    clock.now += 5_000;
    expect(l.blockedForMs("10.0.0.1")).toBe(3_000);
    clock.now += 2_999;
    expect(l.blockedForMs("10.0.0.1")).toBe(1);
    // The window is over: the address may try again, with a clean count.
    clock.now += 1;
    expect(l.blockedForMs("10.0.0.1")).toBe(0);
    l.recordFailure("10.0.0.1");
    l.recordFailure("10.0.0.1");
    expect(l.blockedForMs("10.0.0.1")).toBe(0);
    l.recordFailure("10.0.0.1");
    expect(l.blockedForMs("10.0.0.1")).toBe(10_000);
  });

  it("does not extend a block while the address keeps failing", () => {
    const { clock, limiter: l } = limiter({ maxFailures: 2, windowMs: 10_000 });
    l.recordFailure("a");
    l.recordFailure("a");
    clock.now += 4_000;
    for (let i = 0; i < 20; i++) l.recordFailure("a");
    expect(l.blockedForMs("a")).toBe(6_000);
    clock.now += 6_000;
    expect(l.blockedForMs("a")).toBe(0);
  });

  it("starts a fresh window for failures spread wider than the window", () => {
    const { clock, limiter: l } = limiter({ maxFailures: 3, windowMs: 1_000 });
    for (let i = 0; i < 10; i++) {
      l.recordFailure("slow");
      expect(l.blockedForMs("slow")).toBe(0);
      clock.now += 600;
    }
  });

  it("keeps addresses apart", () => {
    const { clock, limiter: l } = limiter({ maxFailures: 2, windowMs: 10_000 });
    l.recordFailure("a");
    l.recordFailure("a");
    l.recordFailure("b");
    expect(l.blockedForMs("a")).toBe(10_000);
    expect(l.blockedForMs("b")).toBe(0);
    expect(l.blockedForMs("c")).toBe(0);
    clock.now += 3_000;
    l.recordFailure("c");
    l.recordFailure("c");
    expect(l.blockedForMs("a")).toBe(7_000);
    expect(l.blockedForMs("b")).toBe(0);
    expect(l.blockedForMs("c")).toBe(10_000);
    // Each window ends on its own.
    clock.now += 7_000;
    expect(l.blockedForMs("a")).toBe(0);
    expect(l.blockedForMs("c")).toBe(3_000);
    // "b"'s single failure went with its window: one more does not block it.
    l.recordFailure("b");
    expect(l.blockedForMs("b")).toBe(0);
  });

  it("forgets the least recently failing address past maxAddresses", () => {
    const { limiter: l } = limiter({ maxFailures: 2, windowMs: 60_000, maxAddresses: 3 });
    for (const address of ["a", "b", "c"]) {
      l.recordFailure(address);
      l.recordFailure(address);
    }
    for (const address of ["a", "b", "c"]) expect(l.blockedForMs(address), address).toBeGreaterThan(0);
    // "a" fails again: now "b" is the one that failed least recently.
    l.recordFailure("a");
    l.recordFailure("d");
    expect(l.blockedForMs("b")).toBe(0);
    expect(l.blockedForMs("a")).toBeGreaterThan(0);
    expect(l.blockedForMs("c")).toBeGreaterThan(0);
    // "d" is remembered: one more failure blocks it, and evicts "c" now.
    l.recordFailure("d");
    expect(l.blockedForMs("d")).toBeGreaterThan(0);
    expect(l.blockedForMs("a")).toBeGreaterThan(0);
    expect(l.blockedForMs("c")).toBeGreaterThan(0);
    l.recordFailure("e");
    expect(l.blockedForMs("c")).toBe(0);
    expect(l.blockedForMs("a")).toBeGreaterThan(0);
    expect(l.blockedForMs("d")).toBeGreaterThan(0);
    // A forgotten address starts from scratch.
    l.recordFailure("b");
    expect(l.blockedForMs("b")).toBe(0);
  });

  it("defaults to 10 failures a minute", () => {
    expect(DEFAULT_FAILED_AUTH_LIMITS).toEqual({ maxFailures: 10, windowMs: 60_000, maxAddresses: 10_000 });
    const { limiter: l } = limiter({});
    for (let i = 0; i < 9; i++) l.recordFailure("x");
    expect(l.blockedForMs("x")).toBe(0);
    l.recordFailure("x");
    expect(l.blockedForMs("x")).toBe(60_000);
  });
});

describe("clientKey", () => {
  it("keys IPv4 peers by address and IPv6 peers by their /64 network", () => {
    expect(clientKey("127.0.0.1")).toBe("127.0.0.1");
    expect(clientKey("::ffff:10.0.0.1")).toBe("::ffff:10.0.0.1");
    expect(clientKey("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
    // Two hosts of one /64 share a key; the next /64 does not.
    expect(clientKey("2001:db8:1:2::7")).toBe(clientKey("2001:DB8:1:2:ffff::1"));
    expect(clientKey("2001:db8:1:3::7")).not.toBe(clientKey("2001:db8:1:2::7"));
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
  });
});
