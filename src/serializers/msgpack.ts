import { Packr, Unpackr } from "msgpackr";
import { FerryError } from "../core/errors.js";
import { checkDecodeInput, checkSize, readMaxBytes, serializationError } from "./limits.js";
import type { Serializer, SizeLimits } from "./serializer.js";
import { defaultTagRegistry, type TagRegistry } from "./tags.js";
import { fromWire, toWire } from "./wire.js";

/*
 * How msgpackr is set up, and why (checked against msgpackr 2.1.4):
 * - useRecords: false. Records decode into plain objects with `__proto__` silently renamed to
 *   `__proto_`, and their readers are compiled with `new Function`. We write plain msgpack maps;
 *   the unpacker still reads records a payload sends whatever this says, so fromWire refuses
 *   the plain objects they turn into.
 * - mapsAsObjects: false. Every msgpack map decodes into a Map, so keys reach our own checks
 *   exactly as sent (`__proto__` included) and never touch an object's prototype. User Maps are
 *   therefore written as `{"$ferry":"Map"}` tags, which keeps them apart from plain objects.
 * - structuredClone: false. Only an explicit `false` (not the default) makes the unpacker refuse
 *   the reference extensions, which would let 500 bytes share one array 2^40 ways or cycle.
 * - moreTypes: true, for Set and BigInts over 64 bits. msgpackr also decodes Error, RegExp and
 *   typed-array extensions whatever the options say; fromWire refuses them, and we register no
 *   extensions of our own (registration would be global to every msgpackr user in the process).
 */
const packr = new Packr({ useRecords: false, moreTypes: true, structuredClone: false });
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false,
  structuredClone: false,
  int64AsType: "bigint",
});

export interface MsgpackSerializerOptions {
  /** Custom types; the process-wide registry by default. */
  readonly tags?: TagRegistry;
}

/** The fast option: Date, Set, BigInt and bytes are native; Map and custom types are tags. */
export function createMsgpackSerializer(options: MsgpackSerializerOptions = {}): Serializer {
  const tags = options.tags ?? defaultTagRegistry;
  return {
    name: "msgpack",
    encode(value: unknown, limits?: SizeLimits): Uint8Array {
      const maxBytes = readMaxBytes(limits);
      const wire = toWire(value, { tags, nativeTypes: true, maxBytes });
      let bytes: Uint8Array;
      try {
        bytes = packr.pack(wire);
      } catch (error) {
        throw serializationError("payload could not be written as msgpack", error);
      }
      checkSize(bytes.byteLength, maxBytes);
      return bytes;
    },
    decode(bytes: Uint8Array, limits?: SizeLimits): unknown {
      const input = checkDecodeInput(bytes, limits);
      let raw: unknown;
      try {
        raw = unpackr.unpack(input);
      } catch (error) {
        if (error instanceof FerryError) throw error;
        // Truncated data, trailing bytes, unknown extensions, and stack overflow from deep nesting
        // (msgpackr reads recursively, before our depth check can run).
        throw serializationError("payload is not valid msgpack", error);
      }
      return fromWire(raw, { tags, nativeTypes: true });
    },
  };
}

export const msgpackSerializer: Serializer = createMsgpackSerializer();
