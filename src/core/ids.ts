import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { v7 as uuidv7 } from "uuid";

/** Time-sortable job id (UUIDv7, monotonic within a process). */
export const newJobId = (): string => uuidv7();

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
export const hashCookie = (cookie: string): Buffer => createHash("sha256").update(cookie).digest();

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
