/**
 * Bad input is refused the same way on every protocol the port speaks: invalid-argument with
 * FERRY_INVALID_ARGUMENT, and nothing stored. A table of protocols × bad inputs, sent by hand
 * against a daemon child process, so that frames can carry any flags: a frame flagged 0x02 or
 * 0x80 used to skip the strict checks on gRPC and gRPC-Web (Connect decodes it as a message all
 * the same), binary Infinity answered FERRY_INTERNAL, and binary protobuf that is not UTF-8 in such
 * a frame answered status 13 with Connect's own message.
 */
import { create, type DescMessage, fromJson, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopedProblem } from "../../src/daemon/envelope-check.js";
import { messageProblem } from "../../src/daemon/message-check.js";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import {
  BackoffSchema,
  HandleRequestSchema,
  JobService,
  LaunchOptionsSchema,
  LaunchRequestSchema,
} from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import {
  connectStreamOutcome,
  connectUnaryOutcome,
  frame,
  grpcOutcome,
  grpcWebOutcome,
  http1,
  http2Call,
  type Outcome,
} from "./raw-calls.js";

/** A binary double in a google.protobuf.Value payload (field 2 of LaunchRequest). */
function launchWithNumber(value: number): Uint8Array {
  const double = Buffer.alloc(8);
  double.writeDoubleLE(value);
  const numberValue = Buffer.concat([Buffer.from([0x11]), double]); // Value.number_value = 2
  const handler = Buffer.from("ferry.echo");
  return Buffer.concat([
    Buffer.from([0x0a, handler.length]),
    handler,
    Buffer.from([0x12, numberValue.length]),
    numberValue,
  ]);
}

const NOT_UTF8 = Buffer.from([0xff, 0xfe]);
const json = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));

/** What a call sends, for one method, in each encoding. */
interface Messages {
  readonly good: { readonly json: Buffer; readonly proto: Uint8Array };
  readonly notUtf8: { readonly json: Buffer; readonly proto: Uint8Array };
}

function launchMessages(): Messages {
  return {
    good: {
      json: json('{"handler":"ferry.echo","payload":{"n":1}}'),
      proto: toBinary(
        LaunchRequestSchema,
        create(LaunchRequestSchema, { handler: "ferry.echo", payload: fromJson(ValueSchema, { n: 1 }) }),
      ),
    },
    notUtf8: {
      json: json('{"handler":"ferry.', NOT_UTF8, '"}'),
      // handler (field 1): two bytes that are not UTF-8.
      proto: Buffer.concat([Buffer.from([0x0a, 0x02]), NOT_UTF8]),
    },
  };
}

function watchMessages(handle: { id: string; cookie: string }): Messages {
  return {
    good: {
      json: json(JSON.stringify({ handle })),
      proto: toBinary(HandleRequestSchema, create(HandleRequestSchema, { handle })),
    },
    notUtf8: {
      json: json('{"handle":{"id":"', NOT_UTF8, '","cookie":"c"}}'),
      // handle (field 1) holding id (field 1): two bytes that are not UTF-8.
      proto: Buffer.concat([Buffer.from([0x0a, 0x04, 0x0a, 0x02]), NOT_UTF8]),
    },
  };
}

interface Protocol {
  readonly name: string;
  readonly json: boolean;
  readonly enveloped: boolean;
  /** Launch (unary) or Watch (server-streaming, for Connect's streaming protocol). */
  readonly streaming: boolean;
  send(body: Uint8Array): Promise<Outcome>;
}

/** A bad input: the body to send on a protocol, or undefined where it cannot be written. */
interface BadInput {
  readonly name: string;
  body(protocol: Protocol, messages: Messages): Uint8Array | undefined;
}

/** The protocol's one message, framed when the protocol frames. */
const single = (protocol: Protocol, message: Uint8Array) =>
  protocol.enveloped ? frame(0, message) : message;

const whenJson = (protocol: Protocol, body: string) =>
  protocol.json ? single(protocol, json(body)) : undefined;

const BAD_INPUTS: BadInput[] = [
  {
    name: "a string that is not UTF-8",
    body: (p, m) => single(p, p.json ? m.notUtf8.json : m.notUtf8.proto),
  },
  {
    name: "a number beyond a double (1e309)",
    body: (p) =>
      whenJson(
        p,
        p.streaming ? '{"handle":{"id":"x","cookie":1e309}}' : '{"handler":"ferry.echo","payload":1e309}',
      ),
  },
  {
    name: "Infinity as a binary double in the payload",
    body: (p) => (p.json || p.streaming ? undefined : single(p, launchWithNumber(Number.POSITIVE_INFINITY))),
  },
  {
    name: "NaN as a binary double in the payload",
    body: (p) => (p.json || p.streaming ? undefined : single(p, launchWithNumber(Number.NaN))),
  },
  {
    name: 'the JSON string "Infinity" in a double field',
    body: (p) =>
      p.streaming
        ? undefined
        : whenJson(p, '{"handler":"ferry.echo","options":{"backoff":{"type":"fixed","jitter":"Infinity"}}}'),
  },
  {
    name: "an unknown field",
    body: (p) =>
      whenJson(
        p,
        p.streaming ? '{"handle":{"id":"x","cookie":"y"},"bogus":1}' : '{"handler":"ferry.echo","bogus":1}',
      ),
  },
  {
    name: "a duplicate key",
    body: (p) =>
      whenJson(
        p,
        p.streaming
          ? '{"handle":{"id":"x","id":"y","cookie":"c"}}'
          : '{"handler":"ferry.echo","handler":"sql.exec"}',
      ),
  },
  {
    name: "a bad message alone in a frame flagged 0x02",
    body: (p, m) => (p.enveloped ? frame(0x02, p.json ? m.notUtf8.json : m.notUtf8.proto) : undefined),
  },
  {
    name: "a bad message alone in a frame flagged 0x80",
    body: (p, m) => (p.enveloped ? frame(0x80, p.json ? m.notUtf8.json : m.notUtf8.proto) : undefined),
  },
  {
    name: "an end-of-stream frame (0x02) before the message",
    body: (p, m) =>
      p.enveloped
        ? Buffer.concat([frame(0x02, "{}"), frame(0, p.json ? m.good.json : m.good.proto)])
        : undefined,
  },
  {
    name: "a trailers frame (0x80) before the message",
    body: (p, m) =>
      p.enveloped
        ? Buffer.concat([frame(0x80, ""), frame(0, p.json ? m.good.json : m.good.proto)])
        : undefined,
  },
  {
    name: "a good message with an unknown flag bit (0x04)",
    body: (p, m) => (p.enveloped ? frame(0x04, p.json ? m.good.json : m.good.proto) : undefined),
  },
  {
    name: "a compressed frame",
    body: (p, m) => (p.enveloped ? frame(0x01, p.json ? m.good.json : m.good.proto) : undefined),
  },
  {
    name: "two messages",
    body: (p, m) => {
      const message = p.json ? m.good.json : m.good.proto;
      return p.enveloped ? Buffer.concat([frame(0, message), frame(0, message)]) : undefined;
    },
  },
  {
    name: "a frame cut short",
    body: (p) => (p.enveloped ? frame(0, "{}").subarray(0, 4) : undefined),
  },
];

const REFUSED: Outcome = { code: "invalid_argument", ferryCode: "FERRY_INVALID_ARGUMENT" };

describe("strict input on every protocol", () => {
  let daemon: TestDaemon | undefined;
  let auth: Record<string, string> = {};
  let launch: Messages;
  let watch: Messages;
  let goodLaunches = 0;
  const protocols: Protocol[] = [];

  beforeAll(async () => {
    daemon = await startTestDaemon({ env: { FERRY_LIMITS__LAUNCHES_PER_MINUTE: "100000" } });
    const { url } = daemon;
    const token = daemon.adminToken();
    auth = { authorization: `Bearer ${token}` };
    const jobs = createClient(JobService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const { handle } = await jobs.launch({ handler: "ferry.echo" }, bearer(token));
    goodLaunches += 1;
    launch = launchMessages();
    watch = watchMessages({ id: handle!.id, cookie: handle!.cookie });
    const overHttp1 =
      (path: string, contentType: string, read: (a: Awaited<ReturnType<typeof http1>>) => Outcome) =>
      async (body: Uint8Array) =>
        read(
          await http1(url, "POST", path, { "content-type": contentType, "x-grpc-web": "1", ...auth }, body),
        );
    const overHttp2 = (contentType: string) => async (body: Uint8Array) =>
      grpcOutcome(
        await http2Call(
          url,
          {
            ":method": "POST",
            ":path": "/ferry.v1.JobService/Launch",
            "content-type": contentType,
            te: "trailers",
            ...auth,
          },
          body,
        ),
      );
    const LAUNCH = "/ferry.v1.JobService/Launch";
    const WATCH = "/ferry.v1.JobService/Watch";
    protocols.push(
      {
        name: "Connect unary JSON",
        json: true,
        enveloped: false,
        streaming: false,
        send: overHttp1(LAUNCH, "application/json", connectUnaryOutcome),
      },
      {
        name: "Connect unary proto",
        json: false,
        enveloped: false,
        streaming: false,
        send: overHttp1(LAUNCH, "application/proto", connectUnaryOutcome),
      },
      {
        name: "Connect streaming JSON",
        json: true,
        enveloped: true,
        streaming: true,
        send: overHttp1(WATCH, "application/connect+json", connectStreamOutcome),
      },
      {
        name: "Connect streaming proto",
        json: false,
        enveloped: true,
        streaming: true,
        send: overHttp1(WATCH, "application/connect+proto", connectStreamOutcome),
      },
      {
        name: "gRPC-Web proto",
        json: false,
        enveloped: true,
        streaming: false,
        send: overHttp1(LAUNCH, "application/grpc-web+proto", grpcWebOutcome),
      },
      {
        name: "gRPC-Web JSON",
        json: true,
        enveloped: true,
        streaming: false,
        send: overHttp1(LAUNCH, "application/grpc-web+json", grpcWebOutcome),
      },
      {
        name: "gRPC proto",
        json: false,
        enveloped: true,
        streaming: false,
        send: overHttp2("application/grpc"),
      },
      {
        name: "gRPC JSON",
        json: true,
        enveloped: true,
        streaming: false,
        send: overHttp2("application/grpc+json"),
      },
    );
  }, 60_000);

  afterAll(() => daemon?.stop());

  const messagesFor = (protocol: Protocol) => (protocol.streaming ? watch : launch);

  it("serves a good call on each protocol (the harness itself is sound)", async () => {
    for (const protocol of protocols) {
      const messages = messagesFor(protocol);
      const message = protocol.json ? messages.good.json : messages.good.proto;
      const answer = await protocol.send(single(protocol, message));
      expect({ protocol: protocol.name, ...answer }).toEqual({
        protocol: protocol.name,
        code: "ok",
        ferryCode: undefined,
      });
      if (!protocol.streaming) goodLaunches += 1;
    }
  }, 60_000);

  it("refuses every bad input on every protocol with invalid-argument and FERRY_INVALID_ARGUMENT", async () => {
    const seen: { protocol: string; input: string; code: string; ferryCode: string | undefined }[] = [];
    for (const protocol of protocols) {
      for (const input of BAD_INPUTS) {
        const body = input.body(protocol, messagesFor(protocol));
        if (body === undefined) continue;
        seen.push({ protocol: protocol.name, input: input.name, ...(await protocol.send(body)) });
      }
    }
    // Every protocol meets a dozen or so of them; the whole table is compared at once.
    expect(seen.length).toBeGreaterThanOrEqual(70);
    expect(seen.filter((cell) => cell.code !== REFUSED.code || cell.ferryCode !== REFUSED.ferryCode)).toEqual(
      [],
    );
  }, 120_000);

  it("stored nothing for the refused calls", async () => {
    const admin = createClient(
      AdminService,
      createConnectTransport({ baseUrl: daemon!.url, httpVersion: "1.1" }),
    );
    const stats = await admin.stats({}, bearer(daemon!.adminToken()));
    expect(Number(stats.launched)).toBe(goodLaunches);
    expect((await fetch(`${daemon!.url}/healthz`)).status).toBe(200);
  }, 30_000);
});

describe("the checks alone", () => {
  const launchInput: DescMessage = LaunchRequestSchema;
  const good = toBinary(LaunchRequestSchema, create(LaunchRequestSchema, { handler: "ferry.echo" }));

  it("takes one message, and an end frame only where its protocol has one and only last", () => {
    const ok = () => undefined;
    expect(envelopedProblem(frame(0, good), undefined, ok)).toBeUndefined();
    expect(envelopedProblem(Buffer.concat([frame(0, good), frame(0x02, "{}")]), 0x02, ok)).toBeUndefined();
    expect(envelopedProblem(Buffer.concat([frame(0, good), frame(0x80, "")]), 0x80, ok)).toBeUndefined();
    expect(envelopedProblem(Buffer.concat([frame(0, good), frame(0x02, "{}")]), undefined, ok)).toMatch(
      /0x02/,
    );
    expect(envelopedProblem(Buffer.concat([frame(0, good), frame(0x80, "")]), 0x02, ok)).toMatch(/0x80/);
    expect(envelopedProblem(frame(0x82, good), 0x80, ok)).toMatch(/0x82/);
    expect(envelopedProblem(frame(0x02, good), 0x02, ok)).toMatch(/no message/);
    expect(envelopedProblem(new Uint8Array(0), undefined, ok)).toMatch(/no message/);
  });

  it("refuses numbers that are not finite wherever a decoded message holds them", () => {
    const jitter = (value: number) =>
      toBinary(
        LaunchRequestSchema,
        create(LaunchRequestSchema, {
          handler: "ferry.echo",
          options: create(LaunchOptionsSchema, {
            backoff: create(BackoffSchema, { type: "fixed", jitter: value }),
          }),
        }),
      );
    expect(messageProblem(launchInput, jitter(0.5), false)).toBeUndefined();
    expect(messageProblem(launchInput, jitter(Number.NEGATIVE_INFINITY), false)).toMatch(/not finite/);
    const nested = toBinary(
      LaunchRequestSchema,
      create(LaunchRequestSchema, {
        handler: "ferry.echo",
        payload: create(ValueSchema, {
          kind: {
            case: "listValue",
            value: { values: [create(ValueSchema, { kind: { case: "numberValue", value: Number.NaN } })] },
          },
        }),
      }),
    );
    expect(messageProblem(launchInput, nested, false)).toMatch(/not finite/);
    expect(messageProblem(launchInput, Buffer.from('{"handler":"x","payload":[1e309]}'), true)).toMatch(
      /too large/,
    );
    expect(
      messageProblem(launchInput, Buffer.from('{"handler":"x","payload":[1e308]}'), true),
    ).toBeUndefined();
  });
});
