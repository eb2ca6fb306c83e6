/**
 * Answers a call refused before Connect reads it (no good token, no room in the body budget, a
 * body over the size limit), framed as its protocol expects, without running Connect's handler:
 * a refusal then costs the daemon a few writes, so a flood of them cannot slow it for everyone.
 *
 * - gRPC: a "trailers-only" answer, `grpc-status` and `grpc-message` in the one header block;
 * - gRPC-Web: status 200 and one trailers frame (flag 0x80);
 * - Connect streaming: status 200 and one end-of-stream frame (flag 0x02) holding the error;
 * - Connect unary, and any other content type: the error's HTTP status and Connect's JSON error.
 *
 * `ferry-error-code` goes where Connect puts an error's metadata (the header block for unary
 * calls and gRPC, the trailers for streams), and the client is then stopped from sending the rest
 * of its body (`endWithAnswer`).
 */
import type { ConnectError } from "@connectrpc/connect";
import {
  codeToHttpStatus,
  contentTypeStreamRegExp as connectStreamType,
  endStreamFlag,
  endStreamToJson,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { contentTypeRegExp as grpcType, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import {
  contentTypeRegExp as grpcWebType,
  trailerFlag,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { toConnectError } from "./rpc-errors.js";
import { endWithAnswer } from "./stream-limits.js";

/** Answers `refusal` (a FerryError; anything else is an internal error); returns it as sent. */
export function answerEarly(request: NodeRequest, response: NodeResponse, refusal: unknown): ConnectError {
  const error = toConnectError(refusal);
  const type = request.headers["content-type"] ?? "";
  // Before the head is written: over HTTP/1.1 it adds `connection: close`.
  endWithAnswer(request, response);
  if (grpcType.test(type)) {
    const status = { "content-type": type, ...Object.fromEntries(setTrailerStatus(new Headers(), error)) };
    // "Trailers-only": one header block that ends the stream, as gRPC clients expect of an answer
    // without a message (Node's compatibility layer would send an empty DATA frame to end it).
    if ("stream" in request) request.stream.respond({ ":status": 200, ...status }, { endStream: true });
    else {
      response.writeHead(200, status);
      response.end();
    }
  } else if (grpcWebType.test(type)) {
    response.writeHead(200, { "content-type": type });
    response.end(frame(trailerFlag, trailerSerialize(setTrailerStatus(new Headers(), error))));
  } else if (connectStreamType.test(type)) {
    const endStream = JSON.stringify(endStreamToJson(new Headers(), error, undefined));
    response.writeHead(200, { "content-type": type });
    response.end(frame(endStreamFlag, new TextEncoder().encode(endStream)));
  } else {
    response.writeHead(codeToHttpStatus(error.code), {
      "content-type": "application/json",
      ...Object.fromEntries(error.metadata),
    });
    response.end(errorToJsonBytes(error, undefined));
  }
  return error;
}

/**
 * Fails a request whose serving threw, as an internal error with nothing from inside, and only
 * that request: a throw in the per-request path must never reach the process (it would end it).
 */
export function answerFailure(request: NodeRequest, response: NodeResponse): void {
  try {
    if (!response.headersSent) {
      answerEarly(request, response, new Error("internal"));
      return;
    }
  } catch {
    // Could not even answer: drop it below.
  }
  response.destroy();
}

/** One enveloped frame: flags, a 4-byte big-endian length, the bytes. */
function frame(flags: number, bytes: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + bytes.length);
  framed[0] = flags;
  new DataView(framed.buffer).setUint32(1, bytes.length);
  framed.set(bytes, 5);
  return framed;
}
