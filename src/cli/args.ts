/**
 * What the job commands read from their command line: a handle written `ID.COOKIE`, whole
 * numbers, and a JSON payload (an argument, or `-` for stdin). Anything malformed is
 * FERRY_INVALID_ARGUMENT, which the CLI answers with exit 2 before calling the daemon.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import secureJson from "secure-json-parse";
import { invalidArgument } from "../core/errors.js";
import type { Handle } from "../core/job.js";
import { strictJsonProblem } from "../daemon/strict-json.js";

// Ids and cookies are made of these alone (a UUID; base64url): a second "." is malformed too.
const HANDLE_PART = /^[A-Za-z0-9_-]{1,128}$/;

/** `ID.COOKIE`, split at the first ".". Its shape only: whether it names a job is the daemon's answer. */
export function parseHandle(text: string): Handle {
  const dot = text.indexOf(".");
  const id = text.slice(0, dot);
  const cookie = text.slice(dot + 1);
  if (dot < 0 || !HANDLE_PART.test(id) || !HANDLE_PART.test(cookie)) {
    throw invalidArgument("a handle is ID.COOKIE, as `ferry launch` prints it");
  }
  return { id, cookie };
}

export const formatHandle = (handle: Handle): string => `${handle.id}.${handle.cookie}`;

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

/** A commander parser for a whole number option, within int32 (the RPC's field type). */
export function integerOption(flag: string, min = INT32.min): (text: string) => number {
  return (text) => {
    const n = /^-?\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > INT32.max) {
      throw invalidArgument(
        `${flag} takes a whole number from ${min} to ${INT32.max}, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  };
}

/**
 * The payload argument: absent is null, `-` reads stdin, anything else is JSON text. Parsed by
 * secure-json-parse (a `__proto__` or `constructor.prototype` key is refused), then held to the
 * daemon's own JSON rules (no prototype key at all, no key twice, nesting at most 64), so the
 * CLI never sends what JSON.parse would have quietly changed (the last of two keys wins).
 */
export async function readPayload(
  arg: string | undefined,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<JsonValue> {
  if (arg === undefined) return null;
  const bytes = arg === "-" ? await readAll(stdin) : Buffer.from(arg, "utf8");
  let parsed: JsonValue;
  try {
    parsed = secureJson.parse(bytes, null, { protoAction: "error", constructorAction: "error" }) as JsonValue;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw invalidArgument(`the payload is not JSON the daemon takes: ${why}`);
  }
  const problem = strictJsonProblem(bytes);
  if (problem !== undefined) throw invalidArgument(`the payload is not JSON the daemon takes: ${problem}`);
  return parsed;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
