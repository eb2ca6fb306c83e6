/**
 * Holds request bodies to strict rules before Connect parses them, and answers a refusal with a
 * Ferry code whatever the protocol:
 *
 * - JSON (Connect JSON unary and enveloped streams, gRPC-Web or gRPC with JSON messages):
 *   `strictJsonProblem`'s rules (duplicate and prototype keys, depth, UTF-8, huge numbers);
 * - binary protobuf: the message must decode against its method's schema, so that a string that
 *   is not UTF-8 is FERRY_INVALID_ARGUMENT (Connect itself would answer it as an internal error).
 *
 * The body is read here (no further than the size limit; a body over it is answered here with
 * FERRY_PAYLOAD_TOO_LARGE and the connection closes), checked, and handed on to Connect unchanged.
 * A refused request is handed on with an empty message instead, and the interceptor below answers
 * it with FERRY_INVALID_ARGUMENT, framed as its protocol expects.
 *
 * Reading the whole body first suits Ferry's calls, which are all unary or server-streaming (the
 * client sends one message). A client-streaming call would wait here for its stream to end.
 */
import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { createContextKey, type Interceptor } from "@connectrpc/connect";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { ERROR_CODE_HEADER, toConnectError } from "./rpc-errors.js";
import { strictJsonProblem } from "./strict-json.js";

/** The reason a request's body was refused, for the interceptor to answer with. */
export const refusedInput = createContextKey<FerryError | undefined>(undefined, {
  description: "why the request body was refused",
});

const REFUSED = Symbol("ferry.refusedInput");
type Guarded = NodeRequest & { [REFUSED]?: FerryError };

/** How each content type frames its messages, and in which encoding. */
const FORMATS: Readonly<Record<string, { readonly enveloped: boolean; readonly json: boolean }>> = {
  "application/json": { enveloped: false, json: true },
  "application/proto": { enveloped: false, json: false },
  "application/connect+json": { enveloped: true, json: true },
  "application/connect+proto": { enveloped: true, json: false },
  "application/grpc-web+json": { enveloped: true, json: true },
  "application/grpc-web+proto": { enveloped: true, json: false },
  "application/grpc-web": { enveloped: true, json: false },
  "application/grpc+json": { enveloped: true, json: true },
  "application/grpc+proto": { enveloped: true, json: false },
  "application/grpc": { enveloped: true, json: false },
};
const EMPTY_JSON = new TextEncoder().encode("{}");
const EMPTY_PROTO = new Uint8Array(0);

/**
 * Reads and checks a request's body. Answers false when it answered the request itself (a body
 * over `maxBytes`: reading stops there, and the connection closes), true when Connect should
 * serve it.
 */
export async function guardBody(
  request: NodeRequest,
  response: NodeResponse,
  maxBytes: number,
  inputOf: (path: string) => DescMessage | undefined,
): Promise<boolean> {
  if (request.method !== "POST") return true;
  const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  const format = Object.hasOwn(FORMATS, type) ? FORMATS[type] : undefined;
  const input = inputOf(request.url?.split("?")[0] ?? "");
  // Unknown content types and paths are Connect's to refuse.
  if (format === undefined || input === undefined) return true;
  const { enveloped, json } = format;
  const body = await readBody(request, maxBytes);
  if (body === undefined) {
    response.writeHead(400, {
      "content-type": "application/json",
      [ERROR_CODE_HEADER]: ErrorCode.PayloadTooLarge,
      connection: "close",
    });
    response.end(
      JSON.stringify({ code: "invalid_argument", message: `the request is larger than ${maxBytes} bytes` }),
    );
    return false;
  }
  const check = (message: Uint8Array) => (json ? strictJsonProblem(message) : protoProblem(input, message));
  const reason = enveloped ? envelopedProblem(body, check) : check(body);
  const problem = reason === undefined ? undefined : new FerryError(ErrorCode.InvalidArgument, reason);
  const empty = json ? EMPTY_JSON : EMPTY_PROTO;
  const passOn = problem === undefined ? body : enveloped ? envelope(empty) : empty;
  if (problem !== undefined) (request as Guarded)[REFUSED] = problem;
  // Connect checks the body against its declared length.
  if (request.headers["content-length"] !== undefined)
    request.headers["content-length"] = String(passOn.length);
  // Connect reads the body by iterating the request: give it the bytes read here.
  Object.defineProperty(request, Symbol.asyncIterator, {
    value: async function* () {
      yield passOn;
    },
  });
  return true;
}

/** For the server's `contextValues`: the refusal `guardBody` recorded, if any. */
export function refusalOf(request: NodeRequest): FerryError | undefined {
  return (request as Guarded)[REFUSED];
}

/** Answers a refused request with its reason before any handler runs. */
export const refuseGuarded: Interceptor = (next) => async (request) => {
  const refusal = request.contextValues.get(refusedInput);
  if (refusal !== undefined) throw toConnectError(refusal);
  return next(request);
};

/** The whole body, or undefined when it is longer than `maxBytes` (reading stops there). */
async function readBody(request: NodeRequest, maxBytes: number): Promise<Uint8Array | undefined> {
  const declared = Number(request.headers["content-length"]);
  if (declared > maxBytes) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Why a binary message does not decode as `input`, or undefined when it does. */
function protoProblem(input: DescMessage, message: Uint8Array): string | undefined {
  try {
    fromBinary(input, message);
    return undefined;
  } catch {
    return `the body is not a valid ${input.typeName} (a string that is not UTF-8, or broken protobuf)`;
  }
}

/** Checks each message of an enveloped body (flags, 4-byte length, message). */
function envelopedProblem(
  body: Uint8Array,
  check: (message: Uint8Array) => string | undefined,
): string | undefined {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let at = 0; at < body.length; ) {
    if (at + 5 > body.length) return "the body ends inside a message's frame";
    const flags = body[at]!;
    const length = view.getUint32(at + 1);
    const end = at + 5 + length;
    if (end > body.length) return "the body ends inside a message";
    if ((flags & 0x01) !== 0) return "compressed messages are not accepted";
    // 0x02 (Connect end-of-stream) and 0x80 (gRPC-Web trailers) frames are not messages.
    if ((flags & 0x82) === 0) {
      const problem = check(body.subarray(at + 5, end));
      if (problem !== undefined) return problem;
    }
    at = end;
  }
  return undefined;
}

function envelope(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + message.length);
  new DataView(framed.buffer).setUint32(1, message.length);
  framed.set(message, 5);
  return framed;
}
