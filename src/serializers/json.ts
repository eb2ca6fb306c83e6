import secureJson from "secure-json-parse";
import { FerryError } from "../core/errors.js";
import { checkDecodeInput, checkSize, readMaxBytes, serializationError, tooLarge } from "./limits.js";
import { isPlainJsonTree } from "./plain-tree.js";
import type { Serializer, SizeLimits } from "./serializer.js";
import { defaultTagRegistry, TAG_KEY, type TagRegistry } from "./tags.js";
import { fromWire, toWire } from "./wire.js";

const TAG_KEY_QUOTED = `"${TAG_KEY}"`;

// fatal: invalid UTF-8 is refused rather than silently turned into U+FFFD.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

export interface JsonSerializerOptions {
  /** Custom types; the process-wide registry by default. */
  readonly tags?: TagRegistry;
}

/** The default serializer, and the only one a daemon accepts from the network unless configured. */
export function createJsonSerializer(options: JsonSerializerOptions = {}): Serializer {
  const tags = options.tags ?? defaultTagRegistry;
  return {
    name: "json",
    encode(value: unknown, limits?: SizeLimits): Uint8Array {
      const maxBytes = readMaxBytes(limits);
      // Plain data (the common case) is already its own wire tree: no converted copy needed.
      const plain = value === undefined || isPlainJsonTree(value, maxBytes ?? 1_000_000);
      const wire = plain ? (value ?? null) : toWire(value, { tags, nativeTypes: false, maxBytes });
      // The wire tree is plain data, so JSON.stringify has no toJSON or replacer left to surprise us.
      const text = stringify(wire);
      // UTF-8 never takes fewer bytes than UTF-16 units, so this rejects early without encoding.
      if (maxBytes !== undefined && text.length > maxBytes) throw tooLarge(maxBytes);
      // Buffer.from is the faster encoder for short strings; the bytes are the same UTF-8.
      const bytes = text.length < 4096 ? Buffer.from(text, "utf8") : utf8Encoder.encode(text);
      checkSize(bytes.byteLength, maxBytes);
      return bytes;
    },
    decode(bytes: Uint8Array, limits?: SizeLimits): unknown {
      const input = checkDecodeInput(bytes, limits);
      let text: string;
      try {
        text = utf8Decoder.decode(input);
      } catch {
        throw serializationError("payload is not valid UTF-8");
      }
      const parsed = parse(text);
      // No tag can hide in text without the tag key; plain trees come back as parsed.
      if (!text.includes(TAG_KEY_QUOTED) && isPlainJsonTree(parsed, Number.POSITIVE_INFINITY)) return parsed;
      return fromWire(parsed, { tags, nativeTypes: false });
    },
  };
}

function stringify(wire: unknown): string {
  try {
    return JSON.stringify(wire);
  } catch (error) {
    // Only a string past V8's length limit gets here.
    throw serializationError("payload is too large to serialize as JSON", error);
  }
}

function parse(text: string): unknown {
  try {
    return secureJson.parse(text, null, { protoAction: "error", constructorAction: "error" });
  } catch (error) {
    if (error instanceof FerryError) throw error;
    // No cause: V8's JSON messages quote the payload, which must not reach logs.
    const forbidden = error instanceof SyntaxError && error.message.includes("forbidden prototype property");
    throw serializationError(
      forbidden
        ? "payload has a forbidden __proto__ or constructor.prototype key"
        : "payload is not valid JSON",
    );
  }
}

export const jsonSerializer: Serializer = createJsonSerializer();
