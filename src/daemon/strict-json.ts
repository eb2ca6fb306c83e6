/**
 * What JSON.parse lets through and a job API must not: a key given twice (JSON.parse keeps the
 * last, so two parsers can read one body two ways), prototype keys (`__proto__`, `constructor`,
 * `prototype`), nesting deeper than `maxDepth`, invalid UTF-8, and numbers too large for a double.
 * No library at hand reports duplicate keys, so this is a small scanner over text that JSON.parse
 * has already accepted as well-formed.
 */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

import type { Value } from "@bufbuild/protobuf/wkt";

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export const MAX_JSON_DEPTH = 64;

/** Why `bytes` are refused, or undefined when they are strict JSON. */
export function strictJsonProblem(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): string | undefined {
  const parsed = parseStrictJson(bytes, maxDepth);
  return "problem" in parsed ? parsed.problem : undefined;
}

/** `bytes` as the JSON value they hold, parsed once, or why they are refused. */
export function parseStrictJson(
  bytes: Uint8Array,
  maxDepth = MAX_JSON_DEPTH,
): { readonly value: unknown } | { readonly problem: string } {
  let text: string;
  try {
    text = fatalUtf8.decode(bytes);
  } catch {
    return { problem: "the body is not valid UTF-8" };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: "the body is not valid JSON" };
  }
  const problem = scan(text, maxDepth);
  return problem === undefined ? { value } : { problem };
}

interface Frame {
  readonly keys: Set<string> | undefined; // undefined: an array
  expectKey: boolean;
}

function scan(text: string, maxDepth: number): string | undefined {
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "{" || c === "[") {
      if (stack.length >= maxDepth) return `the body nests deeper than ${maxDepth} levels`;
      stack.push({ keys: c === "{" ? new Set() : undefined, expectKey: c === "{" });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      const top = stack.at(-1);
      if (top?.keys !== undefined) top.expectKey = true;
    } else if (c === '"') {
      const end = stringEnd(text, i);
      const top = stack.at(-1);
      if (top?.keys !== undefined && top.expectKey) {
        // Decoded, so that "\u005f_proto__" is caught as well as "__proto__".
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (PROTOTYPE_KEYS.has(key)) return `the key ${JSON.stringify(key)} is not allowed`;
        if (top.keys.has(key))
          return `the key ${JSON.stringify(key.slice(0, 100))} appears twice in one object`;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let end = i;
      while (end + 1 < text.length && /[0-9eE+\-.]/.test(text[end + 1]!)) end++;
      // JSON.parse reads 1e309 as Infinity, which no later step could store or send back.
      if (!Number.isFinite(Number(text.slice(i, end + 1)))) return "a number is too large";
      i = end;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return text.length - 1;
}

/**
 * The same key, depth and number rules for a value that arrived as binary protobuf (a
 * `google.protobuf.Value`), which never passed through the JSON scanner.
 */
export function valueProblem(value: Value, maxDepth = MAX_JSON_DEPTH): string | undefined {
  const walk = (v: Value, depth: number): string | undefined => {
    if (depth > maxDepth) return `the payload nests deeper than ${maxDepth} levels`;
    const kind = v.kind;
    // Binary protobuf carries any double, Infinity and NaN included, which JSON cannot hold.
    if (kind.case === "numberValue" && !Number.isFinite(kind.value))
      return "a number in the payload is not finite";
    if (kind.case === "structValue") {
      for (const [key, field] of Object.entries(kind.value.fields)) {
        if (PROTOTYPE_KEYS.has(key)) return `the key ${JSON.stringify(key)} is not allowed`;
        const problem = walk(field, depth + 1);
        if (problem !== undefined) return problem;
      }
    } else if (kind.case === "listValue") {
      for (const item of kind.value.values) {
        const problem = walk(item, depth + 1);
        if (problem !== undefined) return problem;
      }
    }
    return undefined;
  };
  return walk(value, 1);
}
