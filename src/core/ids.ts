import { hash, randomBytes, timingSafeEqual } from "node:crypto";

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
let lastMs = 0;
let counter = 0;

/**
 * Time-sortable job id: UUIDv7 (RFC 9562) with the 12-bit rand_a field used as a counter within
 * the millisecond (the RFC's "method 1"), so ids made by one process sort in creation order.
 * Written here rather than taken from `uuid` because bulk launches make one per job and the
 * library's version cost ~6 µs each (a random-bytes call per id); this draws from a pool.
 */
export function newJobId(): string {
  let ms = Date.now();
  if (ms <= lastMs) {
    counter += 1;
    // Counter spent within one millisecond: borrow the next one, keeping the order.
    if (counter > 0xfff) {
      lastMs += 1;
      counter = 0;
    }
    ms = lastMs;
  } else {
    lastMs = ms;
    counter = 0;
  }
  const r = random16();
  const t = ms.toString(16).padStart(12, "0");
  return (
    `${t.slice(0, 8)}-${t.slice(8, 12)}-7${hex[counter >> 8]!.slice(1)}${hex[counter & 0xff]}-` +
    `${hex[(r[0]! & 0x3f) | 0x80]}${hex[r[1]!]}-${hex[r[2]!]}${hex[r[3]!]}${hex[r[4]!]}${hex[r[5]!]}${hex[r[6]!]}${hex[r[7]!]}`
  );
}

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const isJobId = (value: unknown): value is string =>
  typeof value === "string" && uuidShape.test(value);

/** Random bytes are drawn in blocks: one syscall serves many cookies during bulk launches. */
let pool = Buffer.alloc(0);
let poolOffset = 0;
function random16(): Buffer {
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(16 * 256);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return out;
}

/** 128 random bits, base64url (22 characters). */
export const newCookie = (): string => random16().toString("base64url");

const cookieShape = /^[A-Za-z0-9_-]{22}$/;
export const isCookie = (value: unknown): value is string =>
  typeof value === "string" && cookieShape.test(value);

/** The store keeps only this hash; the cookie itself is shown once, to the launcher. */
export const hashCookie = (cookie: string): Buffer => hash("sha256", cookie, "buffer") as Buffer;

const nothingMatches = hashCookie("ferry:no-such-cookie");

/**
 * Constant-time check of a cookie against a stored hash. A missing hash (unknown id, detached
 * job) costs the same comparison, so timing tells nothing about whether the id exists.
 */
export function cookieMatches(cookie: string, storedHash: Uint8Array | null | undefined): boolean {
  const given = hashCookie(cookie);
  const expected = storedHash && storedHash.length === 32 ? storedHash : nothingMatches;
  const same = timingSafeEqual(given, expected);
  return same && expected !== nothingMatches;
}
