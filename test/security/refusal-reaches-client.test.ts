/**
 * A refusal answered before the body was read still reaches the client whole. Closing a
 * connection with request bytes unread makes the kernel reset it, and a reset can destroy the
 * answer before the client reads it (the CLI once saw a bad token as exit 1, not 3, on a loaded
 * machine); resetting an HTTP/2 stream a client still writes to fails its call likewise. So the
 * daemon reads and drops a small body after an early answer (stream-limits.ts `endWithAnswer`),
 * and only a large or endless one is cut off. An HTTP/1.1 body without a declared length is not
 * waited for (its connection closes with the answer), so a client that writes it only after the
 * answer came may see EPIPE: Ferry's own clients send a request in one write.
 */
import http from "node:http";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

const CALLS = 200;
/** A launch body of a few KiB, as a CLI or a service sends. */
const PAYLOAD = { note: "x".repeat(8_000) };

/** One HTTP/1.1 POST on its own connection: the status and Ferry code it got, or how it failed. */
function postOnce(url: string, body: string): Promise<string> {
  return new Promise((resolve) => {
    const request = http.request(
      `${url}/ferry.v1.JobService/Launch`,
      {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: "Bearer ferry_not_a_token",
        },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(`${response.statusCode} ${response.headers["ferry-error-code"]}`));
        response.on("error", (error) => resolve(`response ${(error as NodeJS.ErrnoException).code}`));
      },
    );
    request.on("error", (error) => resolve(`request ${(error as NodeJS.ErrnoException).code}`));
    request.end(body);
  });
}

describe("an early refusal", () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon();
  }, 30_000);
  afterAll(() => daemon?.stop());

  it("reaches every HTTP/1.1 client that sent a small body, none reset", async () => {
    const body = JSON.stringify({ handler: "ferry.echo", payload: PAYLOAD });
    const answers = await Promise.all(Array.from({ length: CALLS }, () => postOnce(daemon.url, body)));
    const counts: Record<string, number> = {};
    for (const answer of answers) counts[answer] = (counts[answer] ?? 0) + 1;
    // 401 until the address has 10 bad tokens in a minute, 429 after: both are answers, a reset is not.
    expect(
      Object.keys(counts).every((answer) =>
        /^(401 FERRY_UNAUTHENTICATED|429 FERRY_QUOTA_EXCEEDED)$/.test(answer),
      ),
      JSON.stringify(counts),
    ).toBe(true);
  }, 60_000);

  it("reaches every gRPC and Connect call on shared HTTP/2 connections, none failed as internal", async () => {
    const transports = [
      createGrpcTransport({ baseUrl: daemon.url }),
      createConnectTransport({ baseUrl: daemon.url, httpVersion: "2" }),
    ];
    for (const transport of transports) {
      const jobs = createClient(JobService, transport);
      const codes = await Promise.all(
        Array.from({ length: CALLS }, () =>
          jobs
            .launch(
              { handler: "ferry.echo", payload: fromJson(ValueSchema, PAYLOAD) },
              bearer("ferry_not_a_token"),
            )
            .then(
              () => "served",
              (error: unknown) =>
                `${Code[ConnectError.from(error).code]} ${ConnectError.from(error).rawMessage}`.replace(
                  /^(Unauthenticated|ResourceExhausted) .*/,
                  "$1",
                ),
            ),
        ),
      );
      const counts: Record<string, number> = {};
      for (const code of codes) counts[code ?? "?"] = (counts[code ?? "?"] ?? 0) + 1;
      expect(
        Object.keys(counts).every((code) => code === "Unauthenticated" || code === "ResourceExhausted"),
        JSON.stringify(counts),
      ).toBe(true);
    }
    // The daemon is fine, and a good token is still served.
    const admin = createClient(JobService, transports[0]!);
    expect(
      (await admin.launch({ handler: "ferry.echo" }, bearer(daemon.adminToken()))).handle?.id,
    ).toBeTruthy();
  }, 90_000);
});
