/**
 * Request bodies in flight are bounded per connection (`limits.max_body_bytes_per_connection`),
 * per user and per daemon (`limits.max_body_bytes_in_flight`), even for callers with a good token:
 * bytes are held as they arrive, and a request that does not fit is refused at once with
 * FERRY_QUOTA_EXCEEDED (HTTP 429, or gRPC RESOURCE_EXHAUSTED), before its body is sent when it
 * declares its length, and the bytes come back when the requests holding them end.
 */
import http2 from "node:http2";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { BodyBudget } from "../../src/daemon/body-budget.js";
import { loadConfig } from "../../src/daemon/config.js";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer } from "../helpers/daemon-process.js";
import { eventually } from "../helpers/temp.js";
import { grpcStream, launchHead, partialMessage, rawHttp1, suiteDaemon, within } from "./raw-body.js";

/** max_payload_bytes 10,000: a request may be up to 75,536 bytes (the payload plus 64 KiB). */
const PER_CONNECTION = 160_000;
const IN_FLIGHT = 240_000;
const DECLARED = 75_000;

describe("the body budget", () => {
  const suite = suiteDaemon({
    env: {
      FERRY_LIMITS__MAX_PAYLOAD_BYTES: "10000",
      FERRY_LIMITS__MAX_BODY_BYTES_PER_CONNECTION: String(PER_CONNECTION),
      FERRY_LIMITS__MAX_BODY_BYTES_IN_FLIGHT: String(IN_FLIGHT),
      FERRY_LIMITS__LAUNCHES_PER_MINUTE: "100000",
      // The holders below stay silent while the test looks: not dropped as stalled meanwhile.
      FERRY_LIMITS__BODY_STALL_TIMEOUT: "60s",
    },
  });

  /** An HTTP/1.1 Launch by the admin declaring `length` bytes and sending `body`. */
  const http1Launch = (length: number, body: string) =>
    rawHttp1(
      suite.port,
      launchHead(`Authorization: Bearer ${suite.daemon.adminToken()}`, `Content-Length: ${length}`) + body,
    );

  it("refuses at once, with 429, a declared body the daemon has no room for, and frees the room", async () => {
    // Three requests declare 75,000 bytes each and send 74,000: 222,000 of 240,000 are held
    // (bytes are held as they arrive; a declared length alone holds nothing).
    const holders = await Promise.all([1, 2, 3].map(() => http1Launch(DECLARED, "{".padEnd(74_000, " "))));
    await eventually(async () => {
      const probe = await http1Launch(DECLARED, "");
      const answer = await probe.answered();
      probe.socket.destroy();
      return answer.startsWith("HTTP/1.1 429 ") ? answer : undefined;
    }, "a refusal once the holders are in");
    const refused = await http1Launch(DECLARED, "");
    const answer = await refused.answered();
    refused.socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer.toLowerCase()).toContain("ferry-error-code: ferry_quota_exceeded");
    expect(holders.every((h) => h.received() === "")).toBe(true);

    // A body that fits what is left is served.
    const small = JSON.stringify({ handler: "ferry.echo" });
    const fits = await http1Launch(Buffer.byteLength(small), small);
    expect(await fits.answered()).toMatch(/^HTTP\/1\.1 200 /);
    fits.socket.destroy();

    // Once the holders are gone their bytes are free again.
    for (const holder of holders) holder.socket.destroy();
    const padded = small.padEnd(DECLARED, " ");
    await eventually(async () => {
      const full = await http1Launch(DECLARED, padded);
      const served = await full.answered();
      full.socket.destroy();
      return served.startsWith("HTTP/1.1 200 ");
    }, "a full-size request served again");
  });

  it("refuses a gRPC stream past its connection's budget, chunk by chunk, and serves other connections", async () => {
    const session = http2.connect(`http://127.0.0.1:${suite.port}`);
    session.on("error", () => undefined);
    try {
      /** A gRPC Launch that sends 70,000 bytes of an unfinished message and no declared length. */
      const open = () => {
        const opened = grpcStream(session, { authorization: `Bearer ${suite.daemon.adminToken()}` });
        opened.stream.write(partialMessage(70_000, 74_000));
        return opened;
      };
      // Three bodies of 70,000 bytes on a connection that may hold 160,000: whichever crosses the
      // line first is refused (the three arrive interleaved), and its bytes are freed at once, so
      // the other two fit and stay open.
      const streams = [open(), open(), open()];
      const first = await within(
        Promise.race(streams.map(async (s) => ({ s, fields: await s.status }))),
        "a refused stream's status",
      );
      expect(first.fields["grpc-status"]).toBe(String(Code.ResourceExhausted));
      expect(first.fields["ferry-error-code"]).toBe("FERRY_QUOTA_EXCEEDED");
      await new Promise((resolve) => setTimeout(resolve, 500));
      const others = streams.filter((s) => s !== first.s);
      expect(others.map((s) => s.stream.closed)).toEqual([false, false]);

      // Another connection has its own budget (and the daemon room for it).
      const jobs = createClient(JobService, createGrpcTransport({ baseUrl: suite.daemon.url }));
      const launched = await jobs.launch({ handler: "ferry.echo" }, bearer(suite.daemon.adminToken()));
      expect(launched.handle?.id).toBeTruthy();
    } finally {
      session.destroy();
    }
  });
});

describe("BodyBudget", () => {
  it("holds each connection and the whole to their limits, all or nothing, until released", () => {
    const budget = new BodyBudget({ perConnection: 100, perUser: 1000, perDaemon: 150 });
    const a = {};
    const b = {};
    const first = budget.open(a);
    expect(first.reserve(60)).toBe(true);
    const second = budget.open(a);
    expect(second.reserve(50)).toBe(false);
    expect(second.reserve(40)).toBe(true);
    const other = budget.open(b);
    expect(other.reserve(60)).toBe(false);
    expect(other.reserve(50)).toBe(true);
    expect(budget.inFlight).toBe(150);
    first.release();
    first.release();
    expect(budget.inFlight).toBe(90);
    expect(other.reserve(50)).toBe(true);
    second.release();
    other.release();
    expect(budget.inFlight).toBe(0);
  });
});

describe("BodyBudget per user", () => {
  it("holds each user to its share over all their connections; fits() reserves nothing", () => {
    const budget = new BodyBudget({ perConnection: 100, perUser: 120, perDaemon: 1000 });
    const mine = budget.open({}, "alice");
    expect(mine.fits(100)).toBe(true);
    expect(mine.reserve(100)).toBe(true);
    const again = budget.open({}, "alice");
    expect(again.fits(30)).toBe(false);
    expect(again.reserve(30)).toBe(false);
    expect(again.reserve(20)).toBe(true);
    const theirs = budget.open({}, "bob");
    expect(theirs.reserve(100)).toBe(true);
    mine.release();
    expect(again.reserve(30)).toBe(true);
    expect(budget.inFlight).toBe(150);
  });
});

describe("the body budget's config", () => {
  it("refuses a budget that could not hold one request of the largest size, naming the key", () => {
    const refusal = (env: Record<string, string>) => {
      try {
        loadConfig({ env });
        return "loaded";
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refusal({ FERRY_LIMITS__MAX_PAYLOAD_BYTES: String(32 * 1024 * 1024) })).toContain(
      "limits.max_body_bytes_per_connection: " +
        `at least max_payload_bytes + 65536 (${32 * 1024 * 1024 + 65_536})`,
    );
    expect(refusal({ FERRY_LIMITS__MAX_BODY_BYTES_PER_USER: "100000" })).toMatch(
      /limits\.max_body_bytes_per_user: at least max_payload_bytes \+ 65536/,
    );
    expect(refusal({ FERRY_LIMITS__MAX_BODY_BYTES_IN_FLIGHT: "100000" })).toMatch(
      /limits\.max_body_bytes_in_flight: at least max_payload_bytes \+ 65536/,
    );
    expect(
      refusal({
        FERRY_LIMITS__MAX_PAYLOAD_BYTES: String(32 * 1024 * 1024),
        FERRY_LIMITS__MAX_BODY_BYTES_PER_CONNECTION: String(64 * 1024 * 1024),
        FERRY_LIMITS__MAX_BODY_BYTES_PER_USER: String(64 * 1024 * 1024),
        FERRY_LIMITS__MAX_BODY_BYTES_IN_FLIGHT: String(256 * 1024 * 1024),
      }),
    ).toBe("loaded");
  });
});
