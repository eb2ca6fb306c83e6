/**
 * An answer the client does not take: bytes queued to send that have not gone down for the stall
 * timeout. A client that opens HTTP/2 streams with a flow-control window of 0 (or an HTTP/1.1
 * socket it never reads) would otherwise keep each answer in the daemon's memory for as long as
 * it keeps the connection, which PINGs do for ever. Such a stream is reset (CANCEL), or the
 * HTTP/1.1 connection closed; the client's other streams go on.
 */
import http2 from "node:http2";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import type { StallWatch } from "./stall-watch.js";

/** Watches `response` until it closes; resets it once its unsent bytes stop going down. */
export function dropStalledAnswer(stalls: StallWatch, request: NodeRequest, response: NodeResponse): void {
  let last = 0;
  const unwatch = stalls.watch(
    () => {
      // writableLength counts what is queued past Node (HTTP/2: not yet taken by nghttp2 under the
      // client's window; HTTP/1.1: not yet taken by the socket). An ended answer is not sent until
      // it is finished, even when nothing is queued in Node. A big chunk counts whole until it is
      // all taken, so a slow reader of one large answer has the whole timeout to take it.
      const unsent = response.writableLength;
      const stuck = unsent > 0 ? unsent >= last : response.writableEnded && !response.writableFinished;
      last = unsent;
      return stuck;
    },
    () => {
      if ("stream" in request) request.stream.close(http2.constants.NGHTTP2_CANCEL);
      else request.socket.destroy();
    },
  );
  response.once("close", unwatch);
}
