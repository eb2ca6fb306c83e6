/**
 * A request whose host or path no URL can be made of (`Host: localhost:99999`, `:authority:
 * 1.2.3.999`, none at all) made Connect's `new URL()` throw outside any handler, and the daemon
 * exit: one request, no token needed (the health service is open). Now such a request gets 400
 * FERRY_INVALID_ARGUMENT before Connect sees it, on every route, HTTP/1.1 and HTTP/2, with
 * authentication on and off, and the daemon goes on serving.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostOfAuthority } from "../../src/daemon/host-check.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { frame, http2Call } from "./raw-calls.js";
import { FRAME, RawH2 } from "./raw-h2.js";

const PATHS = ["/grpc.health.v1.Health/Check", "/ferry.v1.JobService/Launch", "/healthz"];
/** nghttp2 itself resets an :authority with a space in it; these it lets through. */
const BAD_AUTHORITIES = ["localhost:99999", "localhost:65536", "1.2.3.999", "[::1", "x:-1"];
const EMPTY_GRPC = frame(0, new Uint8Array(0));

/** One raw HTTP/1.x request on its own socket; answers the status line and headers received. */
function rawHttp1(port: number, head: string, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(received));
    socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

const post = (path: string, hostLine: string, version = "1.1") =>
  `${path === "/healthz" ? "GET" : "POST"} ${path} HTTP/${version}\r\n${hostLine}` +
  `content-type: application/grpc-web+proto\r\ncontent-length: ${path === "/healthz" ? 0 : EMPTY_GRPC.length}\r\n` +
  "connection: close\r\n\r\n";

for (const auth of [true, false]) {
  describe(`unparsable hosts with authentication ${auth ? "on" : "off"}`, () => {
    let daemon: TestDaemon | undefined;
    let port = 0;
    let pid: number | undefined;
    beforeAll(async () => {
      daemon = await startTestDaemon({ env: { FERRY_SERVER__AUTH_ENABLED: String(auth) } });
      port = Number(new URL(daemon.url).port);
      pid = daemon.child.pid;
    }, 60_000);
    afterAll(() => daemon?.stop());

    const stillServing = async () => {
      const health = await fetch(`${daemon!.url}/healthz`);
      expect(health.status).toBe(200);
      expect(daemon!.child.exitCode).toBeNull();
      expect(daemon!.child.signalCode).toBeNull();
      expect(daemon!.child.pid).toBe(pid);
    };

    it("answers 400 over HTTP/1.1 to a Host no URL can hold, or none (HTTP/1.0)", async () => {
      for (const path of PATHS) {
        for (const host of [...BAD_AUTHORITIES, "a b:1"]) {
          const answer = await rawHttp1(port, post(path, `host: ${host}\r\n`), EMPTY_GRPC);
          expect({ path, host, head: answer.split("\r\n")[0] }).toEqual({
            path,
            host,
            head: "HTTP/1.1 400 Bad Request",
          });
          expect(answer.toLowerCase()).toContain("ferry-error-code: ferry_invalid_argument");
        }
        // HTTP/1.0 may leave the Host out: Connect had no authority at all and threw as well.
        const noHost = await rawHttp1(port, post(path, "", "1.0"), EMPTY_GRPC);
        expect({ path, head: noHost.split("\r\n")[0] }).toEqual({ path, head: "HTTP/1.1 400 Bad Request" });
      }
      await stillServing();
    });

    it("answers 400 over HTTP/2 to an :authority no URL can hold, or none", async () => {
      for (const path of PATHS) {
        for (const authority of BAD_AUTHORITIES) {
          const answer = await http2Call(
            daemon!.url,
            {
              ":method": path === "/healthz" ? "GET" : "POST",
              ":path": path,
              ":authority": authority,
              "content-type": "application/grpc",
              te: "trailers",
            },
            path === "/healthz" ? undefined : EMPTY_GRPC,
          );
          expect({
            path,
            authority,
            status: answer.status,
            code: answer.headers["ferry-error-code"],
          }).toEqual({ path, authority, status: 400, code: "FERRY_INVALID_ARGUMENT" });
        }
        // No :authority and no host: nghttp2 resets such a stream itself (PROTOCOL_ERROR); were
        // it let through, it would get the same 400. Either way the daemon lives on.
        const raw = await RawH2.connect(port);
        try {
          raw.headers(
            1,
            [
              [":method", "POST"],
              [":scheme", "http"],
              [":path", path],
              ["content-type", "application/grpc"],
            ],
            false,
          );
          raw.data(1, EMPTY_GRPC, true);
          const answer = await raw.waitFor(
            (f) => (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM) && f.stream === 1,
            "an answer",
          );
          // ":status: 400" is HPACK static entry 12 (0x8c), Node's encoder uses it.
          if (answer.type === FRAME.HEADERS) expect(answer.payload[0]).toBe(0x8c);
        } finally {
          raw.close();
        }
      }
      await stillServing();
    });
  });
}

describe("hostOfAuthority", () => {
  it("takes ports up to 65535 only", () => {
    expect(hostOfAuthority("localhost:65535")).toBe("localhost");
    expect(hostOfAuthority("localhost:0")).toBe("localhost");
    for (const bad of ["localhost:65536", "localhost:99999", "127.0.0.1:70000", "[::1]:99999"])
      expect(hostOfAuthority(bad), bad).toBeUndefined();
  });
});
