/**
 * One RPC sent as raw bytes over Connect JSON (HTTP/1.1) or gRPC (HTTP/2), and its answer kept
 * whole (status, headers but `date`, trailers, body) so that two answers can be compared byte for
 * byte: what a caller could use to tell two cases apart.
 */
import { create, type DescMessage, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { expect } from "vitest";
import { ErrorDetailSchema } from "../../src/gen/ferry/v1/errors_pb.js";
import { frame, http1, http2Call, type RawAnswer } from "./raw-calls.js";

export interface Call {
  readonly service: string;
  readonly method: string;
  readonly schema: DescMessage;
  readonly streaming?: boolean;
  readonly body: JsonValue;
}

export type Sender = (url: string, token: string, call: Call) => Promise<RawAnswer>;

export interface Comparable {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly trailers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** An answer as bytes to compare: everything but the `date` header. */
export function comparable(answer: RawAnswer): Comparable {
  const { date: _date, ...headers } = answer.headers;
  return { status: answer.status, headers, trailers: answer.trailers, body: answer.body.toString("base64") };
}

export const overConnect: Sender = (url, token, call) => {
  const json = JSON.stringify(call.body);
  return http1(
    url,
    "POST",
    `/${call.service}/${call.method}`,
    {
      "content-type": call.streaming ? "application/connect+json" : "application/json",
      authorization: `Bearer ${token}`,
    },
    call.streaming ? frame(0, json) : json,
  );
};

export const overGrpc: Sender = (url, token, call) =>
  http2Call(
    url,
    {
      ":method": "POST",
      ":path": `/${call.service}/${call.method}`,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    },
    frame(0, toBinary(call.schema, fromJson(call.schema, call.body))),
  );

export const PROTOCOLS = [
  ["Connect JSON", overConnect],
  ["gRPC", overGrpc],
] as const;

const STATUS = {
  not_found: { grpc: "5", http: 404 },
  invalid_argument: { grpc: "3", http: 400 },
} as const;

/** The answer is this error, wherever its protocol puts it. */
export function expectRefusal(
  answer: Comparable,
  expected: { readonly code: keyof typeof STATUS; readonly ferryCode: string; readonly message: string },
): void {
  const body = Buffer.from(answer.body, "base64").toString();
  const fields = { ...answer.headers, ...answer.trailers };
  const { code, ferryCode, message } = expected;
  if (fields["content-type"]?.startsWith("application/grpc")) {
    expect([
      fields["grpc-status"],
      decodeURIComponent(fields["grpc-message"] ?? ""),
      fields["ferry-error-code"],
    ]).toEqual([STATUS[code].grpc, message, ferryCode]);
    // The typed detail (google.rpc.Status holding a ferry.v1.ErrorDetail) names the same code.
    const details = Buffer.from(fields["grpc-status-details-bin"] ?? "", "base64").toString("latin1");
    expect(details).toContain("ferry.v1.ErrorDetail");
    expect(details).toContain(ferryCode);
  } else if (fields["content-type"] === "application/connect+json") {
    // A stream's error rides in its end-of-stream frame.
    expect(body).toContain(JSON.stringify({ code, message }).slice(1, -1));
    expect(body).toContain(`"ferry-error-code":["${ferryCode}"]`);
  } else {
    expect([answer.status, fields["ferry-error-code"], JSON.parse(body)]).toEqual([
      STATUS[code].http,
      ferryCode,
      { code, message, details: [ferryDetail(ferryCode)] },
    ]);
  }
}

/** The typed error detail as Connect JSON writes it. */
const ferryDetail = (ferryCode: string) => ({
  type: "ferry.v1.ErrorDetail",
  // Connect writes standard base64 without padding.
  value: Buffer.from(toBinary(ErrorDetailSchema, create(ErrorDetailSchema, { code: ferryCode })))
    .toString("base64")
    .replace(/=+$/, ""),
  debug: { code: ferryCode },
});

/** Every answer is the same bytes as the first, and that answer is `expected`. */
export function expectAllSame(
  answers: readonly Comparable[],
  expected: Parameters<typeof expectRefusal>[1],
): void {
  expect(answers.length).toBeGreaterThan(1);
  for (const other of answers.slice(1)) expect(other).toEqual(answers[0]);
  expectRefusal(answers[0]!, expected);
}
