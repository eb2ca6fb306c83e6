/**
 * One port for everything: gRPC over HTTP/2 (cleartext, prior knowledge, as gRPC clients speak it
 * without TLS), and Connect JSON, gRPC-Web and plain GET routes over HTTP/1.1. A connection is
 * routed by its first bytes: HTTP/2 always opens with the preface `PRI * HTTP/2.0`, which no
 * HTTP/1.1 method starts with. Both protocols hand requests to the same Connect handler.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

export interface ServerOptions {
  readonly host: string;
  /** 0: any free port (the listening one is in `address`). */
  readonly port: number;
  readonly routes: (router: ConnectRouter) => void;
  /** Largest request body a call may send, in bytes (the payload limit plus framing). */
  readonly maxRequestBytes: number;
}

export interface RunningServer {
  /** Where it listens, e.g. `http://127.0.0.1:50051`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0");
/** A client that sends nothing at all is dropped after this. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const handler = connectNodeAdapter({
    routes: options.routes,
    readMaxBytes: options.maxRequestBytes,
    fallback: (request, response) => {
      if (request.method === "GET" && request.url === "/healthz") {
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
        response.end("ok\n");
        return;
      }
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      response.end("not found\n");
    },
  });
  const http1 = http.createServer(
    { requestTimeout: 300_000, headersTimeout: 10_000, maxHeaderSize: 16_384 },
    handler,
  );
  http1.keepAliveTimeout = 5_000;
  const h2 = http2.createServer({ maxSessionMemory: 10 }, handler);
  // An idle HTTP/2 session is destroyed after a while, as an idle HTTP/1.1 connection is closed:
  // with no 'timeout' listener Node destroys it (a listener, even an empty one, would keep it).
  h2.setTimeout(120_000);
  const sockets = new Set<net.Socket>();

  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
    socket.once("readable", () => {
      const first: Buffer | null = socket.read(HTTP2_PREFACE.length) ?? socket.read();
      socket.setTimeout(0);
      if (first === null) return;
      socket.unshift(first);
      const isHttp2 = first.subarray(0, 3).equals(HTTP2_PREFACE.subarray(0, 3));
      (isHttp2 ? h2 : http1).emit("connection", socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, options.host, () => resolve());
  });
  const address = front.address() as net.AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: async () => {
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        http1.closeIdleConnections();
        for (const socket of sockets) socket.end();
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, 2_000).unref();
      });
    },
  };
}
