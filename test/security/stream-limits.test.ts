/**
 * One HTTP/2 connection cannot make the daemon hold more than `server.max_streams_per_connection`
 * streams or a header list over `server.max_header_bytes`, even from a client that never
 * acknowledges the server's SETTINGS (until then Node's own header limit does not bind).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService, LaunchRequestSchema } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { selfSigned } from "../helpers/self-signed.js";
import { tempDir } from "../helpers/temp.js";
import { FRAME, H2_ERROR, RawH2, SETTING } from "./raw-h2.js";

const BIG_HEADER = "a".repeat(40_000);

/** The request pseudo-headers, a token, and gRPC's headers for a Launch that sends no body yet. */
const openLaunch = (token: string): [string, string][] => [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/ferry.v1.JobService/Launch"],
  [":authority", "127.0.0.1"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
  ["authorization", `Bearer ${token}`],
];

const healthz = (extra: [string, string][]): [string, string][] => [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/healthz"],
  [":authority", "127.0.0.1"],
  ...extra,
];

const portOf = (daemon: TestDaemon) => Number(new URL(daemon.url).port);

describe("HTTP/2 stream limits, defaults", () => {
  let daemon: TestDaemon | undefined;
  let tlsDaemon: TestDaemon | undefined;
  let ca: Buffer;
  const certs = tempDir();
  beforeAll(async () => {
    daemon = await startTestDaemon();
    const { cert, key, pem } = selfSigned(certs.path);
    ca = pem;
    tlsDaemon = await startTestDaemon({
      env: { FERRY_SERVER__TLS_CERT: cert, FERRY_SERVER__TLS_KEY: key },
    });
  }, 60_000);
  afterAll(() => {
    daemon?.stop();
    tlsDaemon?.stop();
    certs.remove();
  });

  it("announces 100 streams and 16 KiB of headers, and refuses the 101st open stream", async () => {
    const client = await RawH2.connect(portOf(daemon!));
    try {
      const token = daemon!.adminToken();
      // 101 Launch streams whose bodies never come: each stays open.
      for (let i = 0; i < 101; i++) client.headers(1 + 2 * i, openLaunch(token));
      const refused = await client.waitFor((f) => f.type === FRAME.RST_STREAM, "a refused stream");
      expect(refused.stream).toBe(201);
      expect(refused.payload.readUInt32BE(0)).toBe(H2_ERROR.REFUSED_STREAM);
      expect(client.serverSettings().get(SETTING.MAX_CONCURRENT_STREAMS)).toBe(100);
      expect(client.serverSettings().get(SETTING.MAX_HEADER_LIST_SIZE)).toBe(16_384);
      // The first hundred are still open: none of them was reset.
      expect([...client.resets().keys()]).toEqual([201]);
      expect(client.closed).toBe(false);
    } finally {
      client.close();
    }
  });

  it.each([
    ["cleartext", false],
    ["TLS", true],
  ])("resets a stream with a 40,000-byte header before SETTINGS are acknowledged, %s", async (_, secure) => {
    const target = secure ? tlsDaemon! : daemon!;
    const client = await RawH2.connect(portOf(target), secure ? ca : undefined);
    try {
      client.headers(1, healthz([["x-big", BIG_HEADER]]), true);
      const reset = await client.waitFor((f) => f.type === FRAME.RST_STREAM && f.stream === 1, "a reset");
      expect(reset.payload.readUInt32BE(0)).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
      expect(client.frames.some((f) => f.type === FRAME.HEADERS && f.stream === 1)).toBe(false);
      // The connection goes on: a request of a sane size is answered.
      client.headers(3, healthz([["x-small", "a".repeat(1_000)]]), true);
      await client.waitFor((f) => f.type === FRAME.HEADERS && f.stream === 3, "an answer to a sane request");
    } finally {
      client.close();
    }
  });

  it("answers a 40,000-byte header over HTTP/1.1 with 431", async () => {
    const response = await fetch(`${daemon!.url}/healthz`, { headers: { "x-big": BIG_HEADER } });
    expect(response.status).toBe(431);
  });
});

describe("HTTP/2 stream limits, from the config", () => {
  let daemon: TestDaemon | undefined;
  beforeAll(async () => {
    daemon = await startTestDaemon({
      env: { FERRY_SERVER__MAX_STREAMS_PER_CONNECTION: "5", FERRY_SERVER__MAX_HEADER_BYTES: "4096" },
    });
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("refuses the stream past server.max_streams_per_connection", async () => {
    const client = await RawH2.connect(portOf(daemon!));
    try {
      for (let i = 0; i < 6; i++) client.headers(1 + 2 * i, openLaunch(daemon!.adminToken()));
      const refused = await client.waitFor((f) => f.type === FRAME.RST_STREAM, "a refused stream");
      expect([refused.stream, refused.payload.readUInt32BE(0)]).toEqual([11, H2_ERROR.REFUSED_STREAM]);
    } finally {
      client.close();
    }
  });

  it("holds headers to server.max_header_bytes over HTTP/2 and HTTP/1.1", async () => {
    const client = await RawH2.connect(portOf(daemon!));
    try {
      client.headers(1, healthz([["x-mid", "a".repeat(6_000)]]), true);
      const reset = await client.waitFor((f) => f.type === FRAME.RST_STREAM && f.stream === 1, "a reset");
      expect(reset.payload.readUInt32BE(0)).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    } finally {
      client.close();
    }
    const response = await fetch(`${daemon!.url}/healthz`, { headers: { "x-mid": "a".repeat(6_000) } });
    expect(response.status).toBe(431);
  });
});

describe("HTTP/2 streams reset as they open", () => {
  let daemon: TestDaemon | undefined;
  beforeAll(async () => {
    daemon = await startTestDaemon({ env: { FERRY_LIMITS__LAUNCHES_PER_MINUTE: "100000" } });
  }, 60_000);
  afterAll(() => daemon?.stop());

  it("starts no call for a stream the client reset in the same breath (rapid reset)", async () => {
    const token = daemon!.adminToken();
    const launch = toBinary(
      LaunchRequestSchema,
      create(LaunchRequestSchema, { handler: "ferry.echo", options: { label: "reset-at-once" } }),
    );
    const body = Buffer.alloc(5 + launch.length);
    body.writeUInt32BE(launch.length, 1);
    body.set(launch, 5);
    const client = await RawH2.connect(portOf(daemon!));
    try {
      // Fifty whole Launch calls, each cancelled right behind its body, in one write.
      client.together(() => {
        for (let i = 0; i < 50; i++) {
          const stream = 1 + 2 * i;
          client.headers(stream, openLaunch(token));
          client.data(stream, body, true);
          client.reset(stream);
        }
      });
      // A last call, not reset: once it is answered, the fifty before it were dealt with.
      client.headers(101, openLaunch(token));
      client.data(101, body, true);
      await client.waitFor((f) => f.type === FRAME.HEADERS && f.stream === 101, "the last call's answer");
    } finally {
      client.close();
    }
    const jobs = createClient(JobService, createGrpcTransport({ baseUrl: daemon!.url }));
    const { jobs: stored } = await jobs.list({ label: "reset-at-once", limit: 100 }, bearer(token));
    expect(stored).toHaveLength(1);
  });
});
