/**
 * Holds request bodies to strict rules before Connect parses them, and answers a refusal with a
 * Ferry code whatever the protocol:
 *
 * - each message, JSON or binary protobuf, is decoded against its method's schema with the strict
 *   rules of message-check.ts (duplicate and prototype keys, depth, UTF-8, finite numbers);
 * - an enveloped body's frames are read as Connect reads them (envelope-check.ts): no frame that
 *   Connect would decode escapes the check.
 *
 * The body is read here, checked, and handed on to Connect unchanged. A body that breaks the rules
 * is handed on as an empty message instead, and the interceptor below answers it with
 * FERRY_INVALID_ARGUMENT, framed as its protocol expects. Reading stops when the body grows past
 * the size limit (FERRY_PAYLOAD_TOO_LARGE), past what the body budget has room for
 * (FERRY_QUOTA_EXCEEDED), or when the client sends nothing for a while (FERRY_TIMEOUT): that
 * refusal goes back to the server, which answers it at once (early-answer.ts) without the rest of
 * the body, and the bytes it held are free again. The server refuses a caller without a good
 * token before this reads anything.
 *
 * Reading the whole body first suits Ferry's calls, which are all unary or server-streaming (the
 * client sends one message). A client-streaming call would wait here for its stream to end.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { createContextKey, type Interceptor } from "@connectrpc/connect";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { BodyBudget, BodyReservation } from "./body-budget.js";
import { CONNECT_END_STREAM, envelopedProblem, GRPC_WEB_TRAILERS } from "./envelope-check.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { messageProblem } from "./message-check.js";
import { toConnectError } from "./rpc-errors.js";
import type { StallWatch } from "./stall-watch.js";
import { connectionOf } from "./stream-limits.js";

/** The reason a request's body was refused, for the interceptor to answer with. */
export const refusedInput = createContextKey<FerryError | undefined>(undefined, {
  description: "why the request body was refused",
});

const REFUSED = Symbol("ferry.refusedInput");
type Guarded = NodeRequest & { [REFUSED]?: FerryError };

/** How each content type frames its messages, and in which encoding. */
interface Format {
  readonly enveloped: boolean;
  readonly json: boolean;
  /** The flags of the protocol's frame that is not a message, when it has one. */
  readonly endFlag?: number;
}
const FORMATS: Readonly<Record<string, Format>> = {
  "application/json": { enveloped: false, json: true },
  "application/proto": { enveloped: false, json: false },
  "application/connect+json": { enveloped: true, json: true, endFlag: CONNECT_END_STREAM },
  "application/connect+proto": { enveloped: true, json: false, endFlag: CONNECT_END_STREAM },
  "application/grpc-web+json": { enveloped: true, json: true, endFlag: GRPC_WEB_TRAILERS },
  "application/grpc-web+proto": { enveloped: true, json: false, endFlag: GRPC_WEB_TRAILERS },
  "application/grpc-web": { enveloped: true, json: false, endFlag: GRPC_WEB_TRAILERS },
  "application/grpc+json": { enveloped: true, json: true },
  "application/grpc+proto": { enveloped: true, json: false },
  "application/grpc": { enveloped: true, json: false },
};
const EMPTY_JSON = new TextEncoder().encode("{}");
const EMPTY_PROTO = new Uint8Array(0);

export interface BodyLimits {
  /** The largest body a request may send, in bytes. */
  readonly maxBytes: number;
  /** Body bytes held at once per connection, per user and per daemon; unbounded when absent. */
  readonly budget?: BodyBudget | undefined;
  /** Drops a body that sends nothing for its timeout; none when absent. */
  readonly stalls?: StallWatch | undefined;
}

/**
 * Reads and checks a request's body for Connect to serve next. Answers undefined when Connect
 * should serve it (its body checked, or refused for the interceptor to answer), or why reading
 * stopped early: the server then answers that itself, and Connect never sees the call.
 */
export async function guardBody(
  request: NodeRequest,
  response: NodeResponse,
  limits: BodyLimits,
  inputOf: (path: string) => DescMessage | undefined,
  user?: string,
): Promise<FerryError | undefined> {
  if (request.method !== "POST") return undefined;
  const format = formatOf(request);
  const input = inputOf(request.url?.split("?")[0] ?? "");
  // Unknown content types and paths are Connect's to refuse (it reads no body to do so).
  if (format === undefined || input === undefined) return undefined;
  const reservation = limits.budget?.open(connectionOf(request), user);
  // Held until the answer is done: the body lives on in the call that serves it.
  if (reservation !== undefined) response.once("close", reservation.release);
  const body = await readBody(request, limits, reservation);
  if (body instanceof FerryError) {
    // What was read is dropped: its bytes are free for other requests at once.
    reservation?.release();
    return body;
  }
  const { enveloped, json, endFlag } = format;
  const check = (message: Uint8Array) => messageProblem(input, message, json);
  const reason = enveloped ? envelopedProblem(body, endFlag, check) : check(body);
  if (reason !== undefined) {
    (request as Guarded)[REFUSED] = new FerryError(ErrorCode.InvalidArgument, reason);
    handOn(request, emptyMessage(format));
    return undefined;
  }
  handOn(request, body);
  return undefined;
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

function formatOf(request: NodeRequest): Format | undefined {
  const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  return Object.hasOwn(FORMATS, type) ? FORMATS[type] : undefined;
}

function emptyMessage({ enveloped, json }: Format): Uint8Array {
  const empty = json ? EMPTY_JSON : EMPTY_PROTO;
  return enveloped ? envelope(empty) : empty;
}

/** Connect reads the body by iterating the request: it gets `body` instead of the socket's bytes. */
function handOn(request: NodeRequest, body: Uint8Array): void {
  // Connect checks the body against its declared length.
  if (request.headers["content-length"] !== undefined)
    request.headers["content-length"] = String(body.length);
  Object.defineProperty(request, Symbol.asyncIterator, {
    value: async function* () {
      yield body;
    },
  });
}

/**
 * The whole body, or why reading stopped: longer than `maxBytes`, more than the budget has room
 * for, or nothing sent for the stall timeout. Bytes are reserved as they arrive, chunk by chunk,
 * before they are kept; never ahead of them, or a client could declare a length, send nothing and
 * hold that room from everyone. A declared length with no room left now is refused at once all the
 * same (the client need not send a body only to have it refused). Reading stops at a refusal and
 * the request is paused, so the client's flow-control window closes.
 */
function readBody(
  request: NodeRequest,
  { maxBytes, stalls }: BodyLimits,
  reservation: BodyReservation | undefined,
): Promise<Uint8Array | FerryError> {
  const declared = Number(request.headers["content-length"] ?? Number.NaN);
  if (declared > maxBytes) return Promise.resolve(tooLarge(maxBytes));
  if (Number.isSafeInteger(declared) && declared > 0 && reservation?.fits(declared) === false)
    return Promise.resolve(busy());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let progressed = true;
    const unwatch = stalls?.watch(
      () => {
        const stuck = !progressed;
        progressed = false;
        return stuck;
      },
      () => stop(stalled()),
    );
    const settle = () => {
      unwatch?.();
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
      request.off("close", onClose);
    };
    const stop = (refusal: FerryError) => {
      settle();
      request.pause();
      resolve(refusal);
    };
    const onData = (chunk: Buffer) => {
      progressed = true;
      size += chunk.length;
      if (size > maxBytes) return stop(tooLarge(maxBytes));
      if (reservation !== undefined && !reservation.reserve(chunk.length)) return stop(busy());
      chunks.push(chunk);
    };
    const onEnd = () => {
      settle();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: unknown) => {
      settle();
      reject(error);
    };
    // Closed before its end: the client went away.
    const onClose = () => onError(new Error("the request closed before its body ended"));
    request.on("data", onData);
    request.once("end", onEnd);
    request.once("error", onError);
    request.once("close", onClose);
  });
}

const tooLarge = (maxBytes: number) =>
  new FerryError(ErrorCode.PayloadTooLarge, `the request is larger than ${maxBytes} bytes`);

const busy = () =>
  new FerryError(
    ErrorCode.QuotaExceeded,
    "the daemon holds too many request bytes at once (limits.max_body_bytes_per_connection, " +
      "limits.max_body_bytes_per_user, limits.max_body_bytes_in_flight): try again shortly",
  );

const stalled = () =>
  new FerryError(
    ErrorCode.Timeout,
    "the request's body stopped arriving (limits.body_stall_timeout): it was dropped",
  );

function envelope(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + message.length);
  new DataView(framed.buffer).setUint32(1, message.length);
  framed.set(message, 5);
  return framed;
}
