/**
 * The shared body budget cannot be held by someone who sends nothing, nor taken whole by one user.
 * Before: a client with no token declared 15 × 1,114,112 bytes on each of 4 HTTP/2 connections to
 * the open health service, sent none of them, and every Launch by a valid user got 429 for as long
 * as the sessions lived. Now an open call's body has its own 1 KiB limit and budget; bytes are
 * reserved as they arrive, not as declared; a body silent for `limits.body_stall_timeout` is
 * dropped (FERRY_TIMEOUT) and its bytes freed; and `limits.max_body_bytes_per_user` keeps one
 * user's bodies from filling what everyone shares.
 */
import http2 from "node:http2";
import type net from "node:net";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DaemonWithUsers, startDaemonWithUsers } from "./daemon-with-users.js";
import { grpcStream, LAUNCH, launchHead, partialMessage, rawHttp1 } from "./raw-body.js";

const HEALTH = "/grpc.health.v1.Health/Check";
/** The default largest request: 1 MiB of payload plus 64 KiB. */
const LARGEST = 1_048_576 + 65_536;

/** Opens HTTP/2 streams to `path` declaring `length` bytes each and sending none. */
function holdDeclared(url: string, path: string, streams: number, length: number, token?: string) {
  const session = http2.connect(url);
  session.on("error", () => undefined);
  const headers = {
    "content-length": String(length),
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
  };
  const statuses = Array.from({ length: streams }, () => grpcStream(session, headers, path).status);
  return { session, statuses };
}

/** An HTTP/1.1 Connect Launch as `token`: its status line and Ferry code. */
async function launch(url: string, token: string): Promise<string> {
  const answer = await fetch(`${url}${LAUNCH}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ handler: "ferry.echo" }),
  });
  await answer.arrayBuffer();
  return `${answer.status} ${answer.headers.get("ferry-error-code") ?? ""}`.trim();
}

describe("callers without a token and the body budget (defaults)", () => {
  let d: DaemonWithUsers | undefined;
  beforeAll(async () => {
    d = await startDaemonWithUsers();
  }, 60_000);
  afterAll(() => d?.daemon.stop());

  it("refuses an open call's body over 1 KiB at once, and Launch is served meanwhile", async () => {
    const url = d!.daemon.url;
    // The attack as found: 64 MiB declared over 4 connections, 15 streams each, nothing sent.
    const held = [0, 1, 2, 3].map(() => holdDeclared(url, HEALTH, 15, LARGEST));
    try {
      const first = await held[0]!.statuses[0]!;
      expect(first["grpc-status"]).toBe(String(Code.InvalidArgument));
      expect(first["ferry-error-code"]).toBe("FERRY_PAYLOAD_TOO_LARGE");
      const user = await d!.user("alice");
      for (let i = 0; i < 3; i++) expect(await launch(url, user.token)).toBe("200");
    } finally {
      for (const h of held) h.session.destroy();
    }
  });

  it("still answers a health check with a body that fits", async () => {
    const session = http2.connect(d!.daemon.url);
    session.on("error", () => undefined);
    try {
      const { stream, status } = grpcStream(session, {}, HEALTH);
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      expect((await status)["grpc-status"]).toBe("0");
    } finally {
      session.destroy();
    }
  });
});

describe("silent and greedy bodies with a token", () => {
  /** max_payload_bytes 10,000: a request may be 75,536 bytes. */
  const env = {
    FERRY_LIMITS__MAX_PAYLOAD_BYTES: "10000",
    FERRY_LIMITS__MAX_BODY_BYTES_PER_CONNECTION: "160000",
    FERRY_LIMITS__MAX_BODY_BYTES_PER_USER: "160000",
    FERRY_LIMITS__MAX_BODY_BYTES_IN_FLIGHT: "400000",
    FERRY_LIMITS__BODY_STALL_TIMEOUT: "2s",
    FERRY_LIMITS__LAUNCHES_PER_MINUTE: "100000",
  };
  let d: DaemonWithUsers | undefined;
  beforeAll(async () => {
    d = await startDaemonWithUsers(env);
  }, 60_000);
  afterAll(() => d?.daemon.stop());

  it("reserves nothing for a declared length that is not sent", async () => {
    const mallory = await d!.user("mallory");
    const alice = await d!.user("alice");
    // 20 streams × 75,000 declared on 4 connections: 6 MB declared against a 400,000 budget.
    const held = [0, 1, 2, 3].map(() => holdDeclared(d!.daemon.url, LAUNCH, 5, 75_000, mallory.token));
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await launch(d!.daemon.url, alice.token)).toBe("200");
    } finally {
      for (const h of held) h.session.destroy();
    }
  });

  it("drops a body that stops arriving, answering FERRY_TIMEOUT", async () => {
    const mallory = await d!.user("mallory2");
    const session = http2.connect(d!.daemon.url);
    session.on("error", () => undefined);
    try {
      const { stream, status } = grpcStream(session, { authorization: `Bearer ${mallory.token}` });
      // 70,000 bytes of a 74,000-byte message, then silence.
      stream.write(partialMessage(70_000, 74_000));
      const startedAt = Date.now();
      const fields = await status;
      expect(fields["grpc-status"]).toBe(String(Code.DeadlineExceeded));
      expect(fields["ferry-error-code"]).toBe("FERRY_TIMEOUT");
      const waited = Date.now() - startedAt;
      expect(waited).toBeGreaterThan(1_500);
      expect(waited).toBeLessThan(6_000);
    } finally {
      session.destroy();
    }
  });

  it("keeps one user's bodies to limits.max_body_bytes_per_user: others are served", async () => {
    const greedy = await d!.user("greedy");
    const other = await d!.user("other");
    const sockets: net.Socket[] = [];
    /** An HTTP/1.1 Launch by `token` sending `sent` of 75,000 declared bytes; the answer so far. */
    const partial = async (token: string, sent: number) => {
      const call = await rawHttp1(
        Number(new URL(d!.daemon.url).port),
        launchHead(`Authorization: Bearer ${token}`, "Content-Length: 75000") + "{".padEnd(sent, " "),
      );
      sockets.push(call.socket);
      return call.received;
    };
    try {
      // Two connections of greedy's hold 140,000 of their 160,000: a third body can't fit.
      await partial(greedy.token, 70_000);
      await partial(greedy.token, 70_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const third = await partial(greedy.token, 30_000);
      const others = await partial(other.token, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(third()).toMatch(/^HTTP\/1\.1 429 /);
      expect(third().toLowerCase()).toContain("ferry-error-code: ferry_quota_exceeded");
      // Another user's body fits: greedy holds no more than its share of the daemon's 400,000.
      expect(others()).toBe("");
      expect(await launch(d!.daemon.url, other.token)).toBe("200");
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});
