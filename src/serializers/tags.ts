import { FerryError, invalidArgument } from "../core/errors.js";
import { serializationError } from "./limits.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The key that marks a tagged value on the wire: `{"$ferry": TAG, "v": ...}`. */
export const TAG_KEY = "$ferry";
/** Reserved tag for a user object that itself has a `$ferry` key, so it is never read as a tag. */
export const ESCAPE_TAG = "Object";

const tagShape = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export function isTagName(tag: unknown): tag is string {
  return typeof tag === "string" && tagShape.test(tag);
}

/**
 * A registered encoder. Its output is serialized again, so it may hold other tagged values;
 * the matching decoder then receives it with those already revived.
 */
export interface TagEncoder {
  readonly tag: string;
  readonly test: (value: unknown) => boolean;
  readonly encode: (value: unknown) => unknown;
}

type Decode = (value: unknown) => unknown;

/**
 * Custom types for the serializers. User encoders are consulted before the built-ins, and only
 * for class instances: plain objects and arrays are always plain data.
 */
export class TagRegistry {
  readonly #userEncoders: TagEncoder[] = [];
  readonly #builtinEncoders: TagEncoder[] = [];
  readonly #encoderTags = new Set<string>();
  // A Map, not an object, so a tag like "constructor" can't find an inherited function.
  readonly #decoders = new Map<string, Decode>();

  constructor() {
    registerBuiltins(this.#builtin.bind(this));
  }

  registerEncoder<T>(
    tag: string,
    test: (value: unknown) => value is T,
    encode: (value: T) => JsonValue,
  ): void;
  registerEncoder(
    tag: string,
    test: (value: unknown) => boolean,
    encode: (value: unknown) => JsonValue,
  ): void;
  registerEncoder(tag: string, test: (value: unknown) => boolean, encode: (value: never) => JsonValue): void {
    this.#claim(tag, this.#encoderTags, "an encoder");
    if (typeof test !== "function" || typeof encode !== "function") {
      throw invalidArgument("registerEncoder takes a tag, a test function and an encode function");
    }
    this.#userEncoders.push({ tag, test, encode: encode as (value: unknown) => unknown });
  }

  registerDecoder(tag: string, decode: (value: JsonValue) => unknown): void {
    if (typeof decode !== "function") throw invalidArgument("registerDecoder takes a tag and a function");
    this.#claim(tag, this.#decoders, "a decoder");
    this.#decoders.set(tag, decode as Decode);
  }

  /** The first user encoder whose test accepts the value. */
  userEncoderFor(value: unknown): TagEncoder | undefined {
    return findEncoder(this.#userEncoders, value);
  }

  builtinEncoderFor(value: unknown): TagEncoder | undefined {
    return findEncoder(this.#builtinEncoders, value);
  }

  /** Revives a tagged value read from a payload; unknown tags are the payload's fault. */
  decode(tag: string, value: unknown): unknown {
    const decode = this.#decoders.get(tag);
    if (decode === undefined) {
      throw serializationError(
        isTagName(tag) ? `no decoder registered for tag "${tag}"` : "payload has a malformed tag",
      );
    }
    try {
      return decode(value);
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw serializationError(`decoder for tag "${tag}" failed`, error);
    }
  }

  // Replacing a tag silently would change what old payloads decode to, so duplicates are refused.
  #claim(tag: string, taken: { has(tag: string): boolean }, what: string): void {
    if (!isTagName(tag)) throw invalidArgument("tag names are 1-64 characters of A-Z a-z 0-9 _ . - ");
    if (tag === ESCAPE_TAG) throw invalidArgument(`tag "${ESCAPE_TAG}" is reserved`);
    if (taken.has(tag)) throw invalidArgument(`tag "${tag}" already has ${what}`);
  }

  #builtin(tag: string, test: (value: unknown) => boolean, encode: Decode, decode: Decode): void {
    this.#builtinEncoders.push({ tag, test, encode });
    this.#encoderTags.add(tag);
    this.#decoders.set(tag, decode);
  }
}

function findEncoder(encoders: readonly TagEncoder[], value: unknown): TagEncoder | undefined {
  for (const encoder of encoders) {
    let matches: boolean;
    try {
      matches = encoder.test(value);
    } catch (error) {
      throw serializationError(`test for tag "${encoder.tag}" failed`, error);
    }
    if (matches) return encoder;
  }
  return undefined;
}

// Strict shapes: a decoder sees attacker-controlled input, so it accepts only what its encoder writes.
const isoDate = /^(?:\d{4}|[+-]\d{6})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const decimal = /^(?:0|-?[1-9]\d*)$/;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function malformed(tag: string): FerryError {
  return serializationError(`payload has a malformed "${tag}" tag`);
}

function pairsOf(value: unknown): Array<[unknown, unknown]> {
  if (!Array.isArray(value) || !value.every((pair) => Array.isArray(pair) && pair.length === 2)) {
    throw malformed("Map");
  }
  return value as Array<[unknown, unknown]>;
}

function registerBuiltins(
  add: (tag: string, test: (v: unknown) => boolean, encode: Decode, decode: Decode) => void,
) {
  add(
    "Date",
    (v) => v instanceof Date,
    (v) => {
      const time = (v as Date).getTime();
      if (Number.isNaN(time)) throw serializationError("cannot serialize an invalid Date");
      return new Date(time).toISOString();
    },
    (v) => {
      if (typeof v !== "string" || !isoDate.test(v)) throw malformed("Date");
      const date = new Date(v);
      if (Number.isNaN(date.getTime())) throw malformed("Date");
      return date;
    },
  );
  add(
    "BigInt",
    (v) => typeof v === "bigint",
    (v) => (v as bigint).toString(),
    (v) => {
      if (typeof v !== "string" || !decimal.test(v)) throw malformed("BigInt");
      return BigInt(v);
    },
  );
  add(
    "Map",
    (v) => v instanceof Map,
    (v) => [...(v as Map<unknown, unknown>)],
    (v) => new Map(pairsOf(v)),
  );
  add(
    "Set",
    (v) => v instanceof Set,
    (v) => [...(v as Set<unknown>)],
    (v) => {
      if (!Array.isArray(v)) throw malformed("Set");
      return new Set(v);
    },
  );
  add(
    "Uint8Array",
    (v) => v instanceof Uint8Array,
    (v) => {
      const bytes = v as Uint8Array;
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
    },
    (v) => {
      // Buffer.from skips characters that aren't base64, so validate first.
      if (typeof v !== "string" || !base64.test(v)) throw malformed("Uint8Array");
      // A fresh Uint8Array: Buffer.from may hand out a slice of a shared pool.
      return new Uint8Array(Buffer.from(v, "base64"));
    },
  );
}

/** A registry with only the built-in tags, for tests and for serializers that must not share state. */
export function createTagRegistry(): TagRegistry {
  return new TagRegistry();
}

/** The process-wide registry behind `registerEncoder`/`registerDecoder` and the default serializers. */
export const defaultTagRegistry: TagRegistry = createTagRegistry();

export function registerEncoder<T>(
  tag: string,
  test: (value: unknown) => value is T,
  encode: (value: T) => JsonValue,
): void;
export function registerEncoder(
  tag: string,
  test: (value: unknown) => boolean,
  encode: (value: unknown) => JsonValue,
): void;
export function registerEncoder(
  tag: string,
  test: (value: unknown) => boolean,
  encode: (value: never) => JsonValue,
): void {
  defaultTagRegistry.registerEncoder(tag, test, encode as (value: unknown) => JsonValue);
}

export function registerDecoder(tag: string, decode: (value: JsonValue) => unknown): void {
  defaultTagRegistry.registerDecoder(tag, decode);
}
