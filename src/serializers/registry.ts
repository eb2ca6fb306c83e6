import { invalidArgument } from "../core/errors.js";
import { jsonSerializer } from "./json.js";
import { msgpackSerializer } from "./msgpack.js";
import type { Serializer } from "./serializer.js";

const nameShape = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

// A Map, so names like "constructor" find nothing inherited.
const serializers = new Map<string, Serializer>([
  [jsonSerializer.name, jsonSerializer],
  [msgpackSerializer.name, msgpackSerializer],
]);

function known(): string {
  return [...serializers.keys()].join(", ");
}

export function getSerializer(name: string): Serializer {
  const serializer = typeof name === "string" ? serializers.get(name) : undefined;
  if (serializer === undefined) {
    throw invalidArgument(`unknown serializer; known serializers: ${known()}`, {
      serializer: typeof name === "string" && nameShape.test(name) ? name : "(invalid name)",
    });
  }
  return serializer;
}

/** Adds a serializer or replaces one; "json" is fixed because daemons rely on its guarantees. */
export function registerSerializer(serializer: Serializer): void {
  const name: unknown = serializer?.name;
  if (typeof name !== "string" || !nameShape.test(name)) {
    throw invalidArgument("serializer names are 1-64 characters of A-Z a-z 0-9 _ . -");
  }
  if (name === jsonSerializer.name) throw invalidArgument('the "json" serializer cannot be replaced');
  if (typeof serializer.encode !== "function" || typeof serializer.decode !== "function") {
    throw invalidArgument("a serializer needs encode and decode functions");
  }
  serializers.set(name, serializer);
}

/** `FERRY_SERIALIZER` if set (it must name a known serializer), else "json". */
export function defaultSerializerName(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const name = env.FERRY_SERIALIZER;
  if (name === undefined || name === "") return jsonSerializer.name;
  if (!serializers.has(name)) {
    throw invalidArgument(`FERRY_SERIALIZER names an unknown serializer; known serializers: ${known()}`);
  }
  return name;
}
