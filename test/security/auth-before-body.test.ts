/**
 * A caller without a good token makes the daemon hold nothing: its token is checked from the
 * headers, the refusal is answered at once (framed for its protocol), and the client is stopped
 * from sending the body (HTTP/2: the stream is reset; HTTP/1.1: the connection closes). A client
 * that never ends its body still gets its answer.
 */
import http2 from "node:http2";
import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { bearer } from "../helpers/daemon-process.js";
import { grpcStream, launchHead, rawHttp1, suiteDaemon, within } from "./raw-body.js";

const ONE_MB = Buffer.alloc(1_000_000, 0x61);

/** An HTTP/2 session on a socket of our own, to count the bytes the client got to send. */
async function h2Session(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => socket });
  session.on("error", () => undefined);
  return { session, sent: () => socket.bytesWritten };
}

/** A gRPC Launch whose 1 MB body is written and never ended: what the server answered. */
async function neverEndingGrpcLaunch(port: number, headers: Record<string, string>) {
  const { session, sent } = await h2Session(port);
  try {
    const { stream, status } = grpcStream(session, headers);
    stream.write(ONE_MB);
    const trailers = await within(status, "gRPC status");
    await within(new Promise((resolve) => stream.once("close", resolve)), "end of the stream");
    return { trailers, rstCode: stream.rstCode, sentBytes: sent() };
  } finally {
    session.destroy();
  }
}

/** A raw HTTP/1.1 request whose body never ends: the answer's head, and whether the server closed. */
async function neverEndingHttp1Launch(port: number, head: string) {
  const call = await rawHttp1(port, head);
  // Keeps sending for as long as the server lets it.
  const drip = setInterval(() => {
    if (!call.socket.destroyed) call.socket.write(`10000\r\n${"a".repeat(0x10000)}\r\n`);
  }, 20);
  try {
    await within(call.closed, "close of the connection");
    return call.received();
  } finally {
    clearInterval(drip);
    call.socket.destroy();
  }
}

describe("authentication before the body", () => {
  const suite = suiteDaemon();

  it.each([
    ["no token", {}],
    ["a bad token", { authorization: "Bearer ferry_bad_0000000000" }],
  ])("answers a gRPC call with %s at once, unread, and resets its stream", async (_, headers) => {
    const { trailers, rstCode, sentBytes } = await neverEndingGrpcLaunch(suite.port, headers);
    expect(trailers["grpc-status"]).toBe(String(Code.Unauthenticated));
    expect(trailers["ferry-error-code"]).toBe("FERRY_UNAUTHENTICATED");
    expect(rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    // Unread, the body stopped at the stream's flow-control window (64 KiB): far from 1 MB.
    expect(sentBytes).toBeLessThan(300_000);
  });

  it("answers an HTTP/1.1 call with no token at once, declared 1 MB and unsent", async () => {
    const call = await rawHttp1(suite.port, launchHead(`Content-Length: ${ONE_MB.length}`));
    try {
      await within(call.closed, "answer and close");
    } finally {
      call.socket.destroy();
    }
    const received = call.received();
    expect(received).toMatch(/^HTTP\/1\.1 401 /);
    expect(received.toLowerCase()).toContain("ferry-error-code: ferry_unauthenticated");
  });

  it("answers an HTTP/1.1 call with no token whose chunked body never ends, and closes", async () => {
    const received = await neverEndingHttp1Launch(suite.port, launchHead("Transfer-Encoding: chunked"));
    expect(received).toMatch(/^HTTP\/1\.1 401 /);
    expect(received.toLowerCase()).toContain("ferry-error-code: ferry_unauthenticated");
  });

  it("serves a good token, and the health protocol without one", async () => {
    const transport = createGrpcTransport({ baseUrl: suite.daemon.url });
    const launched = await createClient(JobService, transport).launch(
      { handler: "ferry.echo" },
      bearer(suite.daemon.adminToken()),
    );
    expect(launched.handle?.id).toBeTruthy();
    const health = await createClient(Health, transport).check({ service: "" });
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });
});

describe("authentication before the body: the bad-token limit", () => {
  const suite = suiteDaemon();

  it("still counts bad tokens refused from their headers, and slows their address", async () => {
    const jobs = createClient(JobService, createGrpcTransport({ baseUrl: suite.daemon.url }));
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const error = await jobs.launch({ handler: "ferry.echo" }, bearer(`ferry_bad${i}_0000000000`)).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      codes.push(
        `${error === undefined ? "OK" : Code[error.code]}/${error?.metadata.get("ferry-error-code")}`,
      );
    }
    expect(codes.slice(0, 10)).toEqual(Array(10).fill("Unauthenticated/FERRY_UNAUTHENTICATED"));
    expect(codes.slice(10)).toEqual(Array(2).fill("ResourceExhausted/FERRY_QUOTA_EXCEEDED"));
  });
});
