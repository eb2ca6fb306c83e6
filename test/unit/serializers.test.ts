import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { ErrorCode, FerryError } from "../../src/core/errors.js";
import {
  createJsonSerializer,
  createMsgpackSerializer,
  createTagRegistry,
  defaultSerializerName,
  getSerializer,
  jsonSerializer,
  MAX_DEPTH,
  msgpackSerializer,
  registerSerializer,
  type Serializer,
} from "../../src/serializers/index.js";

const text = new TextEncoder();
const both: ReadonlyArray<[string, Serializer]> = [
  ["json", jsonSerializer],
  ["msgpack", msgpackSerializer],
];

function ferryError(run: () => unknown): FerryError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    return error as FerryError;
  }
  throw new Error("expected a FerryError, nothing was thrown");
}

function expectCode(run: () => unknown, code: ErrorCode): FerryError {
  const error = ferryError(run);
  expect(error.code).toBe(code);
  return error;
}

const jsonBytes = (source: string): Uint8Array => text.encode(source);
/** Writes what a hostile or foreign msgpack producer could send. */
const rawPackr = new Packr({ useRecords: false, moreTypes: true });

function nestedArrays(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

const sample = () => ({
  when: new Date("2024-05-06T07:08:09.123Z"),
  big: 2n ** 100n,
  small: -42n,
  map: new Map<unknown, unknown>([
    ["a", 1],
    [2, new Date(0)],
    [{ k: 1 }, [1, 2]],
  ]),
  set: new Set<unknown>(["x", 3, 7n]),
  bytes: new Uint8Array([0, 1, 254, 255]),
  nested: { list: [1, "two", null, true, { deep: [new Set([new Map([["k", new Date(5)]])])] }] },
  float: 1.5,
  unicode: "héllo 👋",
});

describe("json serializer", () => {
  it("round-trips tagged types and writes them as $ferry tags", () => {
    const value = sample();
    const bytes = jsonSerializer.encode(value);
    const wire = new TextDecoder().decode(bytes);
    expect(wire).toContain('{"$ferry":"Date","v":"2024-05-06T07:08:09.123Z"}');
    expect(wire).toContain('{"$ferry":"BigInt","v":"-42"}');
    const back = jsonSerializer.decode(bytes) as ReturnType<typeof sample>;
    expect(back).toEqual(value);
    expect(back.when).toBeInstanceOf(Date);
    expect(back.map).toBeInstanceOf(Map);
    expect(back.set).toBeInstanceOf(Set);
    expect(back.big).toBe(2n ** 100n);
    expect(back.bytes).toBeInstanceOf(Uint8Array);
    expect([...back.bytes]).toEqual([0, 1, 254, 255]);
  });

  it("decodes a Buffer as a Uint8Array with its own memory", () => {
    const back = jsonSerializer.decode(jsonSerializer.encode(Buffer.from("hi"))) as Uint8Array;
    expect(back.constructor).toBe(Uint8Array);
    expect(back.buffer.byteLength).toBe(2);
    expect(Buffer.from(back).toString()).toBe("hi");
  });

  it("follows JSON for undefined and refuses what JSON would drop silently", () => {
    expect(new TextDecoder().decode(jsonSerializer.encode(undefined))).toBe("null");
    const holey = [1, undefined, 2, 3];
    delete holey[2];
    expect(jsonSerializer.decode(jsonSerializer.encode(holey))).toEqual([1, null, null, 3]);
    expect(jsonSerializer.decode(jsonSerializer.encode({ a: undefined, b: 1 }))).toEqual({ b: 1 });
    expectCode(() => jsonSerializer.encode({ f: () => 1 }), ErrorCode.Serialization);
    expectCode(() => jsonSerializer.encode([Symbol("s")]), ErrorCode.Serialization);
    expectCode(() => jsonSerializer.encode({ n: Number.NaN }), ErrorCode.Serialization);
    expectCode(() => jsonSerializer.encode([Number.POSITIVE_INFINITY]), ErrorCode.Serialization);
    expectCode(() => jsonSerializer.encode(new Date(Number.NaN)), ErrorCode.Serialization);
  });

  it("refuses class instances it has no encoder for, but honours toJSON", () => {
    class Opaque {
      secret = 1;
    }
    expect(ferryError(() => jsonSerializer.encode({ o: new Opaque() })).message).toContain("Opaque");
    expectCode(() => jsonSerializer.encode(new Error("boom")), ErrorCode.Serialization);
    const throwing = {};
    Object.defineProperty(throwing, "bad", {
      enumerable: true,
      get: () => {
        throw new Error("getter");
      },
    });
    expect(ferryError(() => jsonSerializer.encode(throwing)).cause).toEqual(new Error("getter"));
    const url = new URL("https://example.com/a");
    expect(jsonSerializer.decode(jsonSerializer.encode({ url }))).toEqual({ url: "https://example.com/a" });
  });

  it("refuses invalid UTF-8", () => {
    const bad = new Uint8Array([0x22, 0xc3, 0x28, 0x22]); // "<broken two-byte sequence>"
    const error = expectCode(() => jsonSerializer.decode(bad), ErrorCode.Serialization);
    expect(error.message).toContain("UTF-8");
  });

  it("refuses malformed JSON without quoting it", () => {
    const error = expectCode(
      () => jsonSerializer.decode(jsonBytes('{"secret": tru')),
      ErrorCode.Serialization,
    );
    expect(error.message).not.toContain("secret");
  });

  it("refuses malformed and unknown tags", () => {
    const unknown = expectCode(
      () => jsonSerializer.decode(jsonBytes('{"a":{"$ferry":"Nope","v":1}}')),
      ErrorCode.Serialization,
    );
    expect(unknown.message).toContain("Nope");
    for (const source of [
      '{"$ferry":"Date","v":"yesterday"}',
      '{"$ferry":"BigInt","v":"12abc"}',
      '{"$ferry":"Uint8Array","v":"not base64!"}',
      '{"$ferry":"Map","v":[[1]]}',
      '{"$ferry":"Date"}',
      '{"$ferry":"Date","v":"2024-01-01T00:00:00.000Z","extra":1}',
      '{"$ferry":"constructor","v":1}',
      '{"$ferry":"Object","v":[1]}',
      '{"$ferry":7,"v":1}',
    ]) {
      expectCode(() => jsonSerializer.decode(jsonBytes(source)), ErrorCode.Serialization);
    }
  });
});

describe("msgpack serializer", () => {
  it("round-trips structured types natively", () => {
    const value = sample();
    const back = msgpackSerializer.decode(msgpackSerializer.encode(value)) as ReturnType<typeof sample>;
    expect(back).toEqual(value);
    expect(back.when).toBeInstanceOf(Date);
    expect(back.map).toBeInstanceOf(Map);
    expect(back.map.get(2)).toEqual(new Date(0));
    expect(back.set).toBeInstanceOf(Set);
    expect(back.set.has(7n)).toBe(true);
    expect(back.big).toBe(2n ** 100n);
    expect(back.small).toBe(-42n);
    expect(back.bytes.constructor).toBe(Uint8Array);
    // Plain objects stay plain objects, not Maps.
    expect(Object.getPrototypeOf(back.nested)).toBe(Object.prototype);
  });

  it("keeps numbers as numbers and bigints as bigints", () => {
    const value = [0, -1, 2 ** 40, 2 ** 60, -0.5, 5n, 0n];
    expect(msgpackSerializer.decode(msgpackSerializer.encode(value))).toEqual(value);
  });

  it("gives FERRY_SERIALIZATION for malformed bytes, never a raw msgpackr error", () => {
    const cases: Array<[string, number[]]> = [
      ["empty", []],
      ["truncated array", [0x92, 0x01]],
      ["trailing bytes", [0x01, 0x02]],
      ["unknown extension", [0xd4, 0x10, 0x00]],
      ["reference without structured clone", [0xd6, 0x70, 0, 0, 0, 1]],
      ["0xc1", [0xc1]],
      ["undefined extension", [0xd4, 0x00, 0x00]],
    ];
    for (const [, bytes] of cases) {
      expectCode(() => msgpackSerializer.decode(new Uint8Array(bytes)), ErrorCode.Serialization);
    }
  });

  it("refuses the types msgpackr builds from any payload (Error, RegExp, other typed arrays)", () => {
    // msgpackr looks error names up on a plain object: "constructor" reaches Object().
    const sneaky = Object.assign(new Error("x"), { name: "constructor" });
    for (const value of [new Error("boom"), sneaky, /a+$/, new Float64Array([1])]) {
      expectCode(() => msgpackSerializer.decode(rawPackr.pack(value)), ErrorCode.Serialization);
    }
  });

  it("refuses records, which msgpackr decodes with __proto__ renamed", () => {
    const withRecords = new Packr();
    const bytes = withRecords.pack(JSON.parse('{"__proto__":{"polluted":1},"a":1}'));
    expectCode(() => msgpackSerializer.decode(bytes), ErrorCode.Serialization);
  });

  it("refuses msgpackr's shared references (a few hundred bytes, 2^40 paths)", () => {
    let value: unknown = [1];
    for (let i = 0; i < 40; i++) value = [value, value];
    const bytes = new Packr({ structuredClone: true, useRecords: false }).pack(value);
    expect(bytes.byteLength).toBeLessThan(1024);
    expectCode(() => msgpackSerializer.decode(bytes), ErrorCode.Serialization);
    const loop: unknown[] = [];
    loop.push(loop);
    expectCode(
      () => msgpackSerializer.decode(new Packr({ structuredClone: true }).pack(loop)),
      ErrorCode.Serialization,
    );
  });

  it("refuses deep nesting even past msgpackr's own stack", () => {
    const huge = new Uint8Array(200_001).fill(0x91);
    huge[200_000] = 0x01;
    expectCode(() => msgpackSerializer.decode(huge), ErrorCode.Serialization);
    // and still works afterwards
    expect(msgpackSerializer.decode(msgpackSerializer.encode({ ok: 1 }))).toEqual({ ok: 1 });
  });
});

describe.each(both)("%s: shared guarantees", (name, serializer) => {
  const forge = (value: unknown): Uint8Array =>
    name === "json" ? jsonBytes(JSON.stringify(value)) : rawPackr.pack(value);

  it("refuses __proto__ keys without polluting Object.prototype", () => {
    const payloads: Uint8Array[] =
      name === "json"
        ? [
            jsonBytes('{"__proto__":{"polluted":"yes"}}'),
            jsonBytes('{"a":[{"\\u005f_proto__":{"polluted":"yes"}}]}'),
          ]
        : [
            rawPackr.pack(new Map([["__proto__", new Map([["polluted", "yes"]])]])),
            rawPackr.pack({ a: [new Map([["__proto__", { polluted: "yes" }]])] }),
          ];
    for (const bytes of payloads) {
      const error = expectCode(() => serializer.decode(bytes), ErrorCode.Serialization);
      expect(error.message).toContain("__proto__");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // and refuses to write one, so the failure shows at enqueue time, not in the worker
    expectCode(
      () => serializer.encode(JSON.parse('{"__proto__":{"polluted":"yes"}}')),
      ErrorCode.Serialization,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses constructor.prototype but allows an ordinary constructor key", () => {
    const evil = { a: { constructor: { prototype: { polluted: "yes" } } } };
    expectCode(() => serializer.decode(forge(evil)), ErrorCode.Serialization);
    expectCode(() => serializer.encode(evil), ErrorCode.Serialization);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const fine = { constructor: "Ada", nested: { constructor: { name: "x" } } };
    expect(serializer.decode(serializer.encode(fine))).toEqual(fine);
  });

  it("checks size before parsing", () => {
    // 2 MB of bytes that are neither UTF-8 nor msgpack: a parse would fail differently.
    const junk = new Uint8Array(2 * 1024 * 1024).fill(0xff);
    const error = expectCode(
      () => serializer.decode(junk, { maxBytes: 1024 * 1024 }),
      ErrorCode.PayloadTooLarge,
    );
    expect(error.details).toEqual({ maxBytes: 1024 * 1024, bytes: 2 * 1024 * 1024 });
    expectCode(() => serializer.decode(junk), ErrorCode.Serialization);
  });

  it("refuses to encode more than maxBytes, and accepts exactly maxBytes", () => {
    const value = { s: "x".repeat(2000) };
    const size = serializer.encode(value).byteLength;
    expect(serializer.encode(value, { maxBytes: size }).byteLength).toBe(size);
    expectCode(() => serializer.encode(value, { maxBytes: size - 1 }), ErrorCode.PayloadTooLarge);
    expectCode(
      () => serializer.decode(serializer.encode(value), { maxBytes: size - 1 }),
      ErrorCode.PayloadTooLarge,
    );
    expectCode(() => serializer.encode(value, { maxBytes: -1 }), ErrorCode.InvalidArgument);
  });

  it("stops early on a shared-reference blow-up", () => {
    let value: unknown = "leaf";
    for (let i = 0; i < 60; i++) value = [value, value]; // 2^60 leaves if expanded
    expectCode(() => serializer.encode(value, { maxBytes: 64 * 1024 }), ErrorCode.PayloadTooLarge);
  });

  it(`accepts ${MAX_DEPTH} levels of nesting and refuses one more, both ways`, () => {
    expect(serializer.decode(serializer.encode(nestedArrays(MAX_DEPTH)))).toEqual(nestedArrays(MAX_DEPTH));
    expectCode(() => serializer.encode(nestedArrays(MAX_DEPTH + 1)), ErrorCode.Serialization);
    expectCode(() => serializer.decode(forge(nestedArrays(MAX_DEPTH + 1))), ErrorCode.Serialization);
    // Far deeper than any recursive parser's stack, written by hand.
    const deep =
      name === "json"
        ? jsonBytes("[".repeat(100_000) + "1" + "]".repeat(100_000))
        : new Uint8Array([...new Uint8Array(100_000).fill(0x91), 0x01]);
    expectCode(() => serializer.decode(deep), ErrorCode.Serialization);
  });

  it("counts tag wrappers as levels on both sides", () => {
    // A Map at the bottom of 62 arrays: wrapper (63), pairs list (64), pair (65) is one too many.
    let value: unknown = new Map([["k", 1]]);
    for (let i = 0; i < MAX_DEPTH - 2; i++) value = [value];
    expectCode(() => serializer.encode(value), ErrorCode.Serialization);
  });

  it("refuses cycles but allows shared references", () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    // The message matters: without cycle detection the depth cap would catch this too, later.
    expect(expectCode(() => serializer.encode(loop), ErrorCode.Serialization).message).toContain("itself");
    const map = new Map<string, unknown>();
    map.set("me", map);
    expect(expectCode(() => serializer.encode({ map }), ErrorCode.Serialization).message).toContain("itself");
    const shared = { x: 1 };
    expect(serializer.decode(serializer.encode([shared, shared]))).toEqual([{ x: 1 }, { x: 1 }]);
  });

  it("refuses unknown tags", () => {
    const bytes = forge({ job: { $ferry: "NoSuchTag", v: 1 } });
    const error = expectCode(() => serializer.decode(bytes), ErrorCode.Serialization);
    expect(error.message).toContain("NoSuchTag");
  });

  it("round-trips user objects that have a $ferry key, unchanged", () => {
    const values = [
      { $ferry: "Date", v: "2024-01-01T00:00:00.000Z" },
      { $ferry: "Object", v: { $ferry: "Date", v: "x" } },
      { $ferry: 1 },
      { list: [{ $ferry: "NoSuchTag", v: 1, extra: new Date(3) }] },
    ];
    for (const value of values) {
      const back = serializer.decode(serializer.encode(value));
      expect(back).toEqual(value);
    }
    const back = serializer.decode(serializer.encode({ $ferry: "Date", v: "2024-01-01T00:00:00.000Z" }));
    expect(back).not.toBeInstanceOf(Date);
  });

  it("round-trips a user class through a custom encoder/decoder pair", () => {
    class Money {
      constructor(
        readonly cents: bigint,
        readonly currency: string,
      ) {}
    }
    const tags = createTagRegistry();
    tags.registerEncoder(
      "acme.Money",
      (v) => v instanceof Money,
      (m) => ({ cents: m.cents.toString(), currency: m.currency }),
    );
    tags.registerDecoder("acme.Money", (v) => {
      const { cents, currency } = v as { cents: string; currency: string };
      return new Money(BigInt(cents), currency);
    });
    const custom = name === "json" ? createJsonSerializer({ tags }) : createMsgpackSerializer({ tags });
    const back = custom.decode(custom.encode({ price: new Money(1999n, "EUR") })) as { price: Money };
    expect(back.price).toBeInstanceOf(Money);
    expect(back.price).toEqual(new Money(1999n, "EUR"));
    // The process-wide registry knows nothing of it: the same bytes are refused there.
    expectCode(() => serializer.decode(custom.encode(new Money(1n, "EUR"))), ErrorCode.Serialization);
    expectCode(() => serializer.encode(new Money(1n, "EUR")), ErrorCode.Serialization);
  });

  it("wraps a throwing custom encoder or decoder in FERRY_SERIALIZATION", () => {
    class Fragile {}
    const tags = createTagRegistry();
    tags.registerEncoder(
      "Fragile",
      (v) => v instanceof Fragile,
      () => {
        throw new Error("nope");
      },
    );
    tags.registerDecoder("Boom", () => {
      throw new Error("nope");
    });
    const custom = name === "json" ? createJsonSerializer({ tags }) : createMsgpackSerializer({ tags });
    expectCode(() => custom.encode(new Fragile()), ErrorCode.Serialization);
    expectCode(() => custom.decode(forge({ $ferry: "Boom", v: 1 })), ErrorCode.Serialization);
  });
});

describe("tag registry", () => {
  it("validates tag names and refuses duplicates and the reserved tag", () => {
    const tags = createTagRegistry();
    for (const bad of ["", "1abc", "has space", "a/b", "x".repeat(65)]) {
      expectCode(() => tags.registerDecoder(bad, (v) => v), ErrorCode.InvalidArgument);
    }
    expectCode(
      () =>
        tags.registerEncoder(
          "Object",
          () => false,
          () => null,
        ),
      ErrorCode.InvalidArgument,
    );
    expectCode(() => tags.registerDecoder("Date", (v) => v), ErrorCode.InvalidArgument);
    tags.registerDecoder("a.b-c_d", (v) => v);
    expectCode(() => tags.registerDecoder("a.b-c_d", (v) => v), ErrorCode.InvalidArgument);
  });

  it("isolated registries do not see each other's tags", () => {
    const one = createTagRegistry();
    const two = createTagRegistry();
    one.registerDecoder("Only.One", () => "one");
    expect(one.decode("Only.One", null)).toBe("one");
    expectCode(() => two.decode("Only.One", null), ErrorCode.Serialization);
  });
});

describe("serializer registry", () => {
  it("picks FERRY_SERIALIZER when set and known, else json", () => {
    expect(defaultSerializerName({})).toBe("json");
    expect(defaultSerializerName({ FERRY_SERIALIZER: "" })).toBe("json");
    expect(defaultSerializerName({ FERRY_SERIALIZER: "msgpack" })).toBe("msgpack");
    const error = expectCode(
      () => defaultSerializerName({ FERRY_SERIALIZER: "yaml" }),
      ErrorCode.InvalidArgument,
    );
    expect(error.message).toContain("FERRY_SERIALIZER");
  });

  it("finds serializers by name and refuses unknown names", () => {
    expect(getSerializer("json")).toBe(jsonSerializer);
    expect(getSerializer("msgpack")).toBe(msgpackSerializer);
    expectCode(() => getSerializer("constructor"), ErrorCode.InvalidArgument);
    expectCode(() => getSerializer("nope"), ErrorCode.InvalidArgument);
  });

  it("registers custom serializers but never replaces json", () => {
    const custom: Serializer = { name: "test.custom", encode: () => new Uint8Array([1]), decode: () => 1 };
    registerSerializer(custom);
    expect(getSerializer("test.custom")).toBe(custom);
    expect(defaultSerializerName({ FERRY_SERIALIZER: "test.custom" })).toBe("test.custom");
    expectCode(() => registerSerializer({ ...custom, name: "json" }), ErrorCode.InvalidArgument);
    expectCode(() => registerSerializer({ ...custom, name: "bad name" }), ErrorCode.InvalidArgument);
    expect(getSerializer("json")).toBe(jsonSerializer);
  });
});
