/**
 * Whether one request message is one the daemon takes, decoded here exactly as Connect will decode
 * it, so that every refusal is Ferry's FERRY_INVALID_ARGUMENT whatever the protocol (Connect's own
 * decode errors are labelled only on the unary Connect path, and a string that is not UTF-8 in
 * binary protobuf would be its internal error):
 *
 * - JSON: strict-json.ts's rules, then the method's schema (no unknown field, no int out of range);
 * - binary protobuf: it decodes against the schema (UTF-8 strings, sound wire format);
 * - either: every number is finite. Binary doubles carry Infinity and NaN, and so do the JSON
 *   strings "Infinity" and "NaN" in a double field; none of them can be stored or answered.
 */
import { type DescMessage, fromBinary, fromJson, type JsonValue, type Message } from "@bufbuild/protobuf";
import { parseStrictJson } from "./strict-json.js";

/** Longest piece of a decoder's message passed on to the caller (it may quote the input). */
const MAX_DETAIL = 200;

/** Why `bytes` are not an acceptable `input` message, or undefined when they are. */
export function messageProblem(input: DescMessage, bytes: Uint8Array, json: boolean): string | undefined {
  let message: Message;
  if (json) {
    const parsed = parseStrictJson(bytes);
    if ("problem" in parsed) return parsed.problem;
    try {
      message = fromJson(input, parsed.value as JsonValue, { ignoreUnknownFields: false });
    } catch (error) {
      const detail = error instanceof Error ? error.message.slice(0, MAX_DETAIL) : "";
      return `the body is not a valid ${input.typeName}: ${detail}`;
    }
  } else {
    try {
      message = fromBinary(input, bytes);
    } catch {
      return `the body is not a valid ${input.typeName} (a string that is not UTF-8, or broken protobuf)`;
    }
  }
  return hasNonFiniteNumber(message) ? "a number is not finite (Infinity or NaN)" : undefined;
}

/** Whether a decoded message holds Infinity or NaN anywhere (walked without recursion). */
function hasNonFiniteNumber(message: Message): boolean {
  const pending: unknown[] = [message];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === "number") {
      if (!Number.isFinite(value)) return true;
    } else if (Array.isArray(value)) {
      // One by one: a list may be longer than a spread's argument limit.
      for (const item of value) pending.push(item);
    } else if (typeof value === "object" && value !== null && !(value instanceof Uint8Array)) {
      // Fields, oneofs ({ case, value }) and maps alike are plain objects.
      for (const item of Object.values(value)) pending.push(item);
    }
  }
  return false;
}
