/**
 * The one-port server's time limits, with short values so the test does not wait the daemon's:
 * a client that sends nothing, one that drips its headers (slowloris), an idle HTTP/1.1 keep-alive
 * connection and an idle HTTP/2 session are each closed by the server; a prompt client is served.
 */
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/daemon/server.js";
import { selfSigned } from "../helpers/self-signed.js";
import { tempDir } from "../helpers/temp.js";

const TIMEOUTS = { firstBytesMs: 300, headersMs: 500, requestMs: 2_000, keepAliveMs: 300, idleMs: 500 };
/** Generous: the server's own timers plus Node's checking interval, on a busy machine. */
const CLOSED_WITHIN_MS = 5_000;

let server: RunningServer;
let tlsServer: RunningServer;
let ca: Buffer;
beforeAll(async () => {
  const options = {
    host: "127.0.0.1",
    port: 0,
    routes: () => undefined,
    maxRequestBytes: 1024,
    timeouts: TIMEOUTS,
  };
  server = await startServer(options);
  const certs = tempDir();
  try {
    const { cert, key, pem } = selfSigned(certs.path);
    ca = pem;
    tlsServer = await startServer({ ...options, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
  } finally {
    certs.remove();
  }
});
afterAll(async () => {
  await server.close();
  await tlsServer.close();
});

/** A raw connection, what it received, and when the server closed it (ms after connecting). */
async function connect(secure = false) {
  const socket = secure
    ? tls.connect({
        port: tlsServer.port,
        host: "127.0.0.1",
        ca,
        servername: "localhost",
        ALPNProtocols: ["http/1.1"],
      })
    : net.connect(server.port, "127.0.0.1");
  await new Promise<void>((resolve, reject) =>
    socket.once(secure ? "secureConnect" : "connect", () => resolve()).once("error", reject),
  );
  const started = performance.now();
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  socket.on("error", () => undefined);
  const closedAfter = new Promise<number>((resolve) =>
    socket.once("close", () => resolve(performance.now() - started)),
  );
  return { socket, received: () => received, closedAfter };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} still open after ${ms} ms`)), ms),
    ),
  ]);
}

describe("the server's time limits", () => {
  it("closes a connection that sends nothing", async () => {
    const client = await connect();
    const after = await within(client.closedAfter, CLOSED_WITHIN_MS, "a silent connection");
    expect(after).toBeGreaterThanOrEqual(TIMEOUTS.firstBytesMs - 50);
    expect(client.received()).toBe("");
  });

  it("closes a connection to the TLS port that never starts its handshake", async () => {
    const socket = net.connect(tlsServer.port, "127.0.0.1");
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    const started = performance.now();
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await within(closed, CLOSED_WITHIN_MS, "a connection with no TLS handshake");
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUTS.firstBytesMs - 50);
  });

  it.each([
    ["cleartext", false],
    ["TLS", true],
  ])("closes an HTTP/1.1 request whose headers never end (slowloris), %s", async (_, secure) => {
    const client = await connect(secure);
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => client.socket.write("X-Drip: 1\r\n"), 100);
    try {
      const after = await within(client.closedAfter, CLOSED_WITHIN_MS, "a dripping request");
      expect(after).toBeGreaterThanOrEqual(TIMEOUTS.headersMs - 50);
      expect(client.received()).not.toContain("200 OK");
    } finally {
      clearInterval(drip);
    }
  });

  it("serves a prompt HTTP/1.1 request, then closes the idle keep-alive connection", async () => {
    const client = await connect();
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    await within(client.closedAfter, CLOSED_WITHIN_MS, "an idle keep-alive connection");
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it("closes a TLS connection that sends nothing after its handshake", async () => {
    const client = await connect(true);
    const after = await within(client.closedAfter, CLOSED_WITHIN_MS, "a silent TLS connection");
    expect(after).toBeGreaterThanOrEqual(TIMEOUTS.idleMs - 100);
    expect(client.received()).toBe("");
  });

  it("closes an idle HTTP/2 session after serving it", async () => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => session.once("close", resolve));
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const stream = session.request({ ":path": "/healthz" });
      stream.on("response", (headers) => resolve(headers[":status"]));
      stream.on("error", reject);
      stream.resume();
    });
    expect(status).toBe(200);
    const started = performance.now();
    await within(closed, CLOSED_WITHIN_MS, "an idle HTTP/2 session");
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUTS.idleMs - 100);
  });
});
