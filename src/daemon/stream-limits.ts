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

/**
 * For a request answered before its body was read to the end: once the answer is sent, the
 * client may not go on sending. HTTP/2 resets the stream (NO_ERROR, RFC 9113 section 8.1: "a
 * complete response prior to the client sending an entire request"); HTTP/1.1 closes the
 * connection, which is the only way to stop a body there.
 */
export function endWithAnswer(request: NodeRequest, response: NodeResponse): void {
  if ("stream" in request) {
    const { stream } = request;
    // Once the answer went out, not before: a reset drops the frames not sent yet.
    stream.once("finish", () => {
      setImmediate(() => {
        if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
    });
    return;
  }
  if (!response.headersSent) response.setHeader("connection", "close");
}

/** What a request's body budget is counted against: its HTTP/2 session, or its socket. */
export function connectionOf(request: NodeRequest): object {
  return "stream" in request ? (request.stream.session ?? request.stream) : request.socket;
}
