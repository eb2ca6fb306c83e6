/**
 * The HTTP/1.1 client under the "connect-json" transport. connect-node's own sends a request's
 * headers first and its body after; the daemon answers a refused call (a bad token, no room in a
 * budget) from its headers alone and closes the connection, so the body's write then fails
 * (EPIPE) and the answer is lost. This one sends each request whole, headers and body in one
 * write, so the daemon's answer is what the caller reads. Request bodies here are one message.
 */
import http from "node:http";
import https from "node:https";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalClientFn } from "@connectrpc/connect/protocol";

export function wholeRequestClient(nodeOptions: https.RequestOptions = {}): UniversalClientFn {
  return async (request) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of request.body ?? []) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(request.url);
    const send = url.protocol === "https:" ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const outgoing = send(url, {
        ...nodeOptions,
        method: request.method,
        headers: { ...Object.fromEntries(request.header), "content-length": String(body.byteLength) },
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
      outgoing.on("error", (error) => reject(unreachable(error)));
      outgoing.on("response", (response) => {
        const header = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value]) header.append(name, one);
        }
        response.on("error", () => undefined);
        resolve({
          status: response.statusCode ?? 0,
          header,
          body: bodyOf(response),
          trailer: new Headers(),
        });
      });
      // Headers and body leave together when the body is given to `end`.
      outgoing.end(body);
    });
  };
}

async function* bodyOf(response: http.IncomingMessage): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of response) yield chunk as Uint8Array;
  } catch (error) {
    throw unreachable(error);
  }
}

/** A connection that failed under a call: the daemon's answer never came. */
function unreachable(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const aborted = error instanceof Error && error.name === "AbortError";
  const message = error instanceof Error ? error.message : String(error);
  return new ConnectError(message, aborted ? Code.Canceled : Code.Unavailable, undefined, undefined, error);
}
