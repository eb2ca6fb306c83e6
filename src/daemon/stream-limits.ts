/**
 * Bounds on what one connection may make the server hold: concurrent HTTP/2 streams, the size of
 * a request's header list, and the end of a request answered before its body was read.
 *
 * Node's HTTP/2 server allows 2^32-1 concurrent streams and header lists of any size unless its
 * SETTINGS say otherwise, and a client may ignore those until it acknowledges them: streams past
 * the limit are refused by nghttp2 at once (REFUSED_STREAM), but the header limit binds only after
 * the acknowledgement, so the server checks each request's headers itself as well.
 */
import http2 from "node:http2";
import type { NodeRequest, NodeResponse } from "./http-types.js";

export interface StreamLimits {
  /** Streams open at once on one HTTP/2 connection; more are refused with REFUSED_STREAM. */
  readonly maxStreamsPerConnection: number;
  /** A request's header list, in bytes counted as HPACK does (name + value + 32 per field). */
  readonly maxHeaderBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxStreamsPerConnection: 100, maxHeaderBytes: 16_384 };

/** The SETTINGS the HTTP/2 server announces, cleartext and TLS alike. */
export function http2Settings(limits: StreamLimits): http2.Settings {
  return {
    maxConcurrentStreams: limits.maxStreamsPerConnection,
    maxHeaderListSize: limits.maxHeaderBytes,
  };
}

/**
 * Resets an HTTP/2 stream whose header list is over the limit, as Node does once the client has
 * acknowledged the SETTINGS (ENHANCE_YOUR_CALM). True when it did; HTTP/1.1's parser has refused
 * such a request already (431).
 */
export function resetOversizedHeaders(request: NodeRequest, maxHeaderBytes: number): boolean {
  if (!("stream" in request)) return false;
  let bytes = 0;
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) bytes += raw[i]!.length + raw[i + 1]!.length + 32;
  if (bytes <= maxHeaderBytes) return false;
  request.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  return true;
}

/** What the server reads and drops of a body it answered early, before it stops the client. */
export const LINGER_BYTES = 64 * 1024;
/**
 * How long such a body may go without a byte, once the answer is out, before it is cut off. Idle
 * time, not a deadline: on a busy connection a stream's body may wait its turn in flow control.
 */
export const LINGER_MS = 5_000;

/**
 * For a request answered before its body was read: the client must not go on sending, yet a small
 * body already on its way must not make the answer lost. A connection closed with unread bytes in
 * its receive buffer is reset by the kernel, and the reset may destroy the answer before the
 * client reads it (an HTTP/2 stream reset likewise may fail a client still writing). So, as web
 * servers' "lingering close": the server reads and drops up to LINGER_BYTES after the answer,
 * while bytes keep coming (LINGER_MS apart at most), and only a body that goes beyond either is
 * cut off: the HTTP/2 stream reset (NO_ERROR, RFC 9113 section 8.1), the HTTP/1.1 connection
 * closed. A body declared larger than
 * LINGER_BYTES is never waited for: its HTTP/1.1 connection closes with the answer.
 */
export function endWithAnswer(request: NodeRequest, response: NodeResponse): void {
  const declared = Number(request.headers["content-length"] ?? Number.NaN);
  if (!("stream" in request) && !(declared <= LINGER_BYTES) && !response.headersSent)
    response.setHeader("connection", "close");
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(timer);
    request.removeListener("data", count);
    if (request.complete) return;
    if ("stream" in request) {
      const { stream } = request;
      if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    } else request.socket.destroy();
  };
  const count = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES && response.writableFinished) stop();
    else timer?.refresh();
  };
  request.on("data", count);
  request.once("end", () => {
    clearTimeout(timer);
    request.removeListener("data", count);
  });
  request.resume();
  // Once the answer went out, not before: a reset or close drops what is not sent yet.
  response.once("finish", () => {
    if (request.complete) return;
    if (dropped > LINGER_BYTES) return setImmediate(stop);
    timer = setTimeout(stop, LINGER_MS);
    timer.unref();
  });
}

/** What a request's body budget is counted against: its HTTP/2 session, or its socket. */
export function connectionOf(request: NodeRequest): object {
  return "stream" in request ? (request.stream.session ?? request.stream) : request.socket;
}
