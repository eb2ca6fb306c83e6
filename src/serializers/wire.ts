import { FerryError } from "../core/errors.js";
import { MAX_DEPTH, serializationError, tooLarge } from "./limits.js";
import { ESCAPE_TAG, isTagName, TAG_KEY, type TagEncoder, type TagRegistry } from "./tags.js";

/**
 * The tree both serializers put on the wire: plain objects, arrays, strings, finite numbers,
 * booleans, null and `{"$ferry": TAG, "v": ...}` wrappers; with `nativeTypes` (msgpack) also
 * Date, bigint, Set and bytes, which the format stores itself.
 *
 * Both directions count depth the same way, on this tree, so whatever one side writes the other
 * side reads back.
 */
export interface WireOptions {
  readonly tags: TagRegistry;
  readonly nativeTypes: boolean;
}

const tooDeep = (): FerryError => serializationError(`payload nests deeper than ${MAX_DEPTH} levels`);

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function kindOf(value: object): string {
  try {
    const name: unknown = value.constructor?.name;
    return typeof name === "string" && name !== "" ? name : "object";
  } catch {
    return "object";
  }
}

/**
 * `__proto__` would set a prototype when assigned; `constructor.prototype` is what merge
 * helpers follow to reach Object.prototype. Refused on both sides (same rule as secure-json-parse).
 */
function checkKey(key: string, value: unknown): void {
  if (key === "__proto__") throw serializationError("payload has a forbidden __proto__ key");
  if (
    key === "constructor" &&
    typeof value === "object" &&
    value !== null &&
    Object.hasOwn(value, "prototype")
  ) {
    throw serializationError("payload has a forbidden constructor.prototype key");
  }
}

/** Converts a user value to the wire tree, applying encoders and refusing what can't round-trip. */
export function toWire(
  value: unknown,
  options: WireOptions & { readonly maxBytes?: number | undefined },
): unknown {
  const { tags, nativeTypes, maxBytes } = options;
  // Every value costs at least one byte and every string at least its length in UTF-8 bytes,
  // so an oversized payload (or a shared-reference blow-up) stops before it is built.
  let budget = maxBytes ?? Number.POSITIVE_INFINITY;
  const spend = (bytes: number): void => {
    budget -= bytes;
    if (budget < 0 && maxBytes !== undefined) throw tooLarge(maxBytes);
  };
  // Only the current path: a value shared by two branches is fine, one containing itself is not.
  const ancestors = new Set<object>();

  function walk(v: unknown, depth: number): unknown {
    spend(1);
    switch (typeof v) {
      case "string":
        spend(v.length);
        return v;
      case "boolean":
        return v;
      case "number":
        if (!Number.isFinite(v)) throw serializationError("cannot serialize NaN or Infinity");
        return v;
      case "undefined":
        return null; // as JSON does in arrays; object properties skip it before getting here
      case "bigint":
        return nativeTypes ? v : tagged(tags.builtinEncoderFor(v)!, v, depth);
      case "object":
        return v === null ? null : container(v, depth);
      default:
        throw serializationError(`cannot serialize a ${typeof v}`);
    }
  }

  function container(v: object, depth: number): unknown {
    if (depth >= MAX_DEPTH) throw tooDeep();
    if (ancestors.has(v)) throw serializationError("cannot serialize a value that contains itself");
    ancestors.add(v);
    try {
      if (Array.isArray(v)) return array(v, depth);
      if (isPlainObject(v)) return object(v, depth);
      const user = tags.userEncoderFor(v);
      if (user !== undefined) return tagged(user, v, depth);
      if (nativeTypes) {
        const native = nativeValue(v, depth);
        if (native !== undefined) return native;
      }
      const builtin = tags.builtinEncoderFor(v);
      if (builtin !== undefined) return tagged(builtin, v, depth);
      const toJSON: unknown = (v as { toJSON?: unknown }).toJSON;
      // Classes that describe themselves for JSON (URL, Decimal, Luxon...) keep working.
      if (typeof toJSON === "function") return walk(toJSON.call(v, ""), depth);
      throw serializationError(`cannot serialize a ${kindOf(v)}: register an encoder for it`);
    } finally {
      ancestors.delete(v);
    }
  }

  function array(v: readonly unknown[], depth: number): unknown[] {
    // Each element costs a byte: a huge (even sparse) array fails before the loop.
    if (v.length > budget && maxBytes !== undefined) throw tooLarge(maxBytes);
    const out = new Array<unknown>(v.length);
    // Indexes, not map(): holes become null instead of staying holes.
    for (let i = 0; i < v.length; i++) out[i] = walk(v[i], depth + 1);
    return out;
  }

  function object(v: Record<string, unknown>, depth: number): unknown {
    const keys = Object.keys(v);
    const escaped = keys.includes(TAG_KEY);
    // The escape wrapper is a level of its own.
    const level = escaped ? depth + 1 : depth;
    if (level >= MAX_DEPTH) throw tooDeep();
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const child = v[key];
      if (child === undefined) continue;
      checkKey(key, child);
      spend(key.length);
      out[key] = walk(child, level + 1);
    }
    return escaped ? { [TAG_KEY]: ESCAPE_TAG, v: out } : out;
  }

  function tagged(encoder: TagEncoder, v: unknown, depth: number): unknown {
    if (depth >= MAX_DEPTH) throw tooDeep();
    let encoded: unknown;
    try {
      encoded = encoder.encode(v);
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw serializationError(`encoder for tag "${encoder.tag}" failed`, error);
    }
    spend(encoder.tag.length);
    return { [TAG_KEY]: encoder.tag, v: walk(encoded, depth + 1) };
  }

  function nativeValue(v: object, depth: number): unknown {
    if (v instanceof Date) {
      if (Number.isNaN(v.getTime())) throw serializationError("cannot serialize an invalid Date");
      return v;
    }
    if (v instanceof Uint8Array) {
      spend(v.byteLength);
      // A Buffer view (no copy) so msgpackr writes standard `bin`, not its typed-array extension.
      return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
    if (v instanceof Set) {
      const out = new Set<unknown>();
      for (const item of v) out.add(walk(item, depth + 1));
      return out;
    }
    return undefined;
  }

  try {
    return walk(value, 0);
  } catch (error) {
    // Getters and toJSON are user code: whatever they throw is reported as a serialization error.
    if (error instanceof FerryError) throw error;
    throw serializationError("value could not be serialized", error);
  }
}

/**
 * Reads a wire tree back into user values: revives tags, refuses prototype keys, unknown kinds
 * of value and over-deep nesting. JSON trees hold plain objects; msgpack trees hold Maps (msgpackr
 * runs with `mapsAsObjects: false` so that no key is renamed or dropped before we see it).
 */
export function fromWire(root: unknown, options: WireOptions): unknown {
  const { tags, nativeTypes } = options;

  function revive(node: unknown, depth: number): unknown {
    switch (typeof node) {
      case "string":
      case "boolean":
        return node;
      case "number":
        if (!Number.isFinite(node)) throw serializationError("payload has NaN or Infinity");
        return node;
      case "bigint":
        if (nativeTypes) return node;
        break;
      case "object":
        if (node === null) return null;
        return container(node, depth);
    }
    throw serializationError(`payload has an unsupported ${typeof node} value`);
  }

  function container(node: object, depth: number): unknown {
    if (Array.isArray(node)) {
      if (depth >= MAX_DEPTH) throw tooDeep();
      return node.map((item) => revive(item, depth + 1));
    }
    const entries = entriesOf(node);
    if (entries !== undefined) {
      if (depth >= MAX_DEPTH) throw tooDeep();
      return entries.some(([key]) => key === TAG_KEY) ? tag(entries, depth) : build(entries, depth);
    }
    if (nativeTypes) {
      if (node instanceof Date && !Number.isNaN(node.getTime())) return node;
      // Exact classes: msgpackr also builds other typed arrays, RegExps and Errors from any payload.
      if (node.constructor === Buffer || node.constructor === Uint8Array) {
        // A copy: msgpackr's bytes may be a view into the input buffer.
        return new Uint8Array(node as Uint8Array);
      }
      if (node.constructor === Set) {
        if (depth >= MAX_DEPTH) throw tooDeep();
        return new Set([...(node as Set<unknown>)].map((item) => revive(item, depth + 1)));
      }
    }
    throw serializationError(`payload has an unsupported ${kindOf(node)} value`);
  }

  /** The entries of something the format uses for objects, or undefined. */
  function entriesOf(node: object): Array<[string, unknown]> | undefined {
    if (!nativeTypes) return isPlainObject(node) ? Object.entries(node) : undefined;
    // In msgpack, plain objects would come from msgpackr records, which our encoder never writes
    // and which rename `__proto__` on the way in; only Maps are objects here.
    if (node.constructor !== Map) return undefined;
    const entries: Array<[string, unknown]> = [];
    for (const [key, value] of node as Map<unknown, unknown>) {
      if (typeof key !== "string") throw serializationError("payload has an object key that is not a string");
      entries.push([key, value]);
    }
    return entries;
  }

  function tag(entries: Array<[string, unknown]>, depth: number): unknown {
    const fields = new Map(entries);
    const name = fields.get(TAG_KEY);
    if (entries.length !== 2 || !fields.has("v") || !isTagName(name)) {
      throw serializationError("payload has a malformed tag");
    }
    const value = fields.get("v");
    if (name !== ESCAPE_TAG) return tags.decode(name, revive(value, depth + 1));
    // An escaped user object: its own `$ferry` key is data, so build it without looking for tags.
    const inner = typeof value === "object" && value !== null ? entriesOf(value) : undefined;
    if (inner === undefined) throw serializationError("payload has a malformed tag");
    if (depth + 1 >= MAX_DEPTH) throw tooDeep();
    return build(inner, depth + 1);
  }

  function build(entries: Array<[string, unknown]>, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of entries) {
      const revived = revive(value, depth + 1);
      checkKey(key, revived);
      out[key] = revived;
    }
    return out;
  }

  return revive(root, 0);
}
