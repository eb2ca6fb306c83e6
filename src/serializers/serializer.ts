/** Caps a caller puts on one payload; bytes are counted on the wire, not in memory. */
export interface SizeLimits {
  readonly maxBytes?: number;
}

/**
 * Turns job payloads and results into bytes and back. Implementations must never run code taken
 * from a payload, and must throw FerryErrors (FERRY_SERIALIZATION, FERRY_PAYLOAD_TOO_LARGE) only.
 */
export interface Serializer {
  /** "json" | "msgpack" | a custom name; stored with each job so the reader picks the same one. */
  readonly name: string;
  encode(value: unknown, limits?: SizeLimits): Uint8Array;
  decode(bytes: Uint8Array, limits?: SizeLimits): unknown;
}
