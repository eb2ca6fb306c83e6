/**
 * API tokens: `ferry_<id>_<secret>`. The id (72 random bits) names the token in the access
 * document and in logs; the secret (256 random bits) is shown once and only its SHA-256 is
 * stored. A slow hash would add nothing: the secret is random, not a password, so it cannot be
 * guessed from its hash by trying likely values.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const PREFIX = "ferry_";
const ID_BYTES = 9;
const SECRET_BYTES = 32;
/** base64url lengths of the two parts: 12 and 43 characters. */
const TOKEN_SHAPE = /^ferry_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})$/;

export interface MintedToken {
  /** The whole token, for its user and nobody else: never stored, never logged. */
  readonly token: string;
  readonly id: string;
  /** SHA-256 of the secret, base64url: what the store keeps. */
  readonly hash: string;
}

export function mintToken(): MintedToken {
  const id = randomBytes(ID_BYTES).toString("base64url");
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  return { token: `${PREFIX}${id}_${secret}`, id, hash: hashSecret(secret) };
}

/** The token's id and secret, or undefined when the text is not shaped like a Ferry token. */
export function parseToken(text: string): { readonly id: string; readonly secret: string } | undefined {
  // Token ids contain "_" too: the shape's fixed lengths split it, not the separator.
  const match = TOKEN_SHAPE.exec(text);
  return match === null ? undefined : { id: match[1]!, secret: match[2]! };
}

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url");
}

/** Whether `secret` hashes to `storedHash`, compared in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), "base64url");
  const stored = Buffer.from(storedHash, "base64url");
  return given.length === stored.length && timingSafeEqual(given, stored);
}
