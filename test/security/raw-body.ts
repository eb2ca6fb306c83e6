/**
 * Raw requests for the request-body tests: an HTTP/1.1 request written by hand on a socket of its
 * own (whose body may never come or never end), a gRPC stream opened on an HTTP/2 session without
 * ending it, and a daemon for one `describe` with its port.
 */
import type http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll } from "vitest";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { grpcStatusOf } from "./raw-h2.js";

export const LAUNCH = "/ferry.v1.JobService/Launch";

/** `promise`, or a failure naming `what` after `ms` (generous: the machine is shared). */
export function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)),
  ]);
}

export interface RawHttp1 {
  readonly socket: net.Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Settles when the connection closes. */
  readonly closed: Promise<void>;
  /** What the server sent once it sent a whole head, waiting up to `within`'s limit. */
  answered(): Promise<string>;
}

/** A connection to the daemon on `port` with `request` (a head, and any body) written on it. */
export async function rawHttp1(port: number, request: string): Promise<RawHttp1> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.write(request);
  return {
    socket,
    received: () => received,
    closed,
    answered: () =>
      within(
        new Promise<string>((resolve) => {
          const check = () => (received.includes("\r\n\r\n") ? resolve(received) : undefined);
          socket.on("data", check);
          check();
        }),
        "an answer",
      ),
  };
}

/** An HTTP/1.1 JSON Launch's head, with `headers` (lines without their CRLF) after its content type. */
export const launchHead = (...headers: string[]): string =>
  `POST ${LAUNCH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
  headers.map((line) => `${line}\r\n`).join("") +
  "\r\n";

/** A gRPC call to `path` (Launch by default) opened with `headers` and left open for the test to write. */
export function grpcStream(
  session: http2.ClientHttp2Session,
  headers: Record<string, string> = {},
  path = LAUNCH,
): { stream: http2.ClientHttp2Stream; status: Promise<http2.IncomingHttpHeaders> } {
  const stream = session.request(
    { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers },
    { endStream: false },
  );
  stream.on("error", () => undefined);
  stream.on("data", () => undefined);
  return { stream, status: grpcStatusOf(stream) };
}

/** A gRPC message's 5-byte prefix and the first `sent` bytes of a message of `length` bytes. */
export function partialMessage(sent: number, length: number): Buffer {
  const part = Buffer.alloc(sent);
  part.writeUInt32BE(length, 1);
  return part;
}

export interface SuiteDaemon {
  readonly daemon: TestDaemon;
  readonly port: number;
}

/** A daemon started in the `describe`'s beforeAll and stopped in its afterAll. */
export function suiteDaemon(options: Parameters<typeof startTestDaemon>[0] = {}): SuiteDaemon {
  let daemon: TestDaemon | undefined;
  beforeAll(async () => {
    daemon = await startTestDaemon(options);
  }, 60_000);
  afterAll(() => daemon?.stop());
  const started = (): TestDaemon => {
    if (daemon === undefined) throw new Error("the suite's daemon is not started yet");
    return daemon;
  };
  return {
    get daemon() {
      return started();
    },
    get port() {
      return Number(new URL(started().url).port);
    },
  };
}
