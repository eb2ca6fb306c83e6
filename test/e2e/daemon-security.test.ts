import { create, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/ferry/v1/admin_pb.js";
import { LaunchRequestSchema } from "../../src/gen/ferry/v1/jobs_pb.js";
import { bearer, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";

/** An array nested `depth` deep. */
const nest = (depth: number): JsonValue => (depth === 0 ? 1 : [nest(depth - 1)]);

/** A marker that must never appear in the daemon's log: it rides in payloads. */
const SECRET_PAYLOAD = "s3cret-payload-7f3a";

describe("security suite: hostile input and refusals, each with its code", () => {
  let daemon: TestDaemon | undefined;
  let url = "";
  let admin = "";
  let submitter = "";
  let viewer = "";
  const answers: string[] = [];

  beforeAll(async () => {
    daemon = await startTestDaemon({
      env: { FERRY_LIMITS__MAX_PAYLOAD_BYTES: "10000", FERRY_LIMITS__LAUNCHES_PER_MINUTE: "100000" },
    });
    url = daemon.url;
    admin = daemon.adminToken();
    const admins = createClient(AdminService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const as = bearer(admin);
    submitter = (await admins.createToken({ user: "sam" }, as)).token;
    viewer = (await admins.createToken({ user: "val", role: "viewer" }, as)).token;
  }, 60_000);

  afterAll(() => daemon?.stop());

  /** A raw Connect unary call: its HTTP status, Ferry code and body text (kept for the leak check). */
  async function raw(
    method: string,
    body: string | Uint8Array,
    headers: Record<string, string> = { authorization: `Bearer ${admin}` },
    contentType = "application/json",
  ) {
    const response = await fetch(`${url}/ferry.v1.${method}`, {
      method: "POST",
      headers: { "content-type": contentType, ...headers },
      body,
    });
    const text = await response.text();
    answers.push(text);
    return { status: response.status, code: response.headers.get("ferry-error-code"), text };
  }

  const launch = (body: string) => raw("JobService/Launch", body);
  const invalid = { status: 400, code: "FERRY_INVALID_ARGUMENT" };

  describe("3. authentication and roles", () => {
    it.each([
      ["no token", {}],
      ["a malformed token", { authorization: "Bearer not-a-token" }],
      ["a token with a wrong secret", { authorization: `Bearer ferry_${"a".repeat(12)}_${"b".repeat(43)}` }],
      ["Basic auth", { authorization: "Basic YWRtaW46YWRtaW4=" }],
      ["an empty x-api-key", { "x-api-key": "" }],
    ])("refuses %s with FERRY_UNAUTHENTICATED", async (_what, headers) => {
      const answer = await raw("JobService/List", "{}", headers as Record<string, string>);
      expect([answer.status, answer.code]).toEqual([401, "FERRY_UNAUTHENTICATED"]);
    });

    it("refuses what a role may not do with FERRY_PERMISSION_DENIED", async () => {
      const denied = { status: 403, code: "FERRY_PERMISSION_DENIED" };
      const by = (token: string) => ({ authorization: `Bearer ${token}` });
      const viewerLaunch = await raw("JobService/Launch", '{"handler":"ferry.echo"}', by(viewer));
      expect({ status: viewerLaunch.status, code: viewerLaunch.code }).toEqual(denied);
      const restricted = await raw("JobService/Launch", '{"handler":"sql.exec"}', by(submitter));
      expect({ status: restricted.status, code: restricted.code }).toEqual(denied);
      const manage = await raw("AdminService/CreateToken", '{"user":"x"}', by(submitter));
      expect({ status: manage.status, code: manage.code }).toEqual(denied);
      const selfGrant = await raw("AdminService/Grant", '{"grant":"viewer","user":"admin"}');
      expect({ status: selfGrant.status, code: selfGrant.code }).toEqual(denied);
      const lastAdmin = await raw("AdminService/RevokeToken", '{"user":"admin"}');
      expect({ status: lastAdmin.status, code: lastAdmin.code }).toEqual(denied);
    });
  });

  describe("4. safe defaults at the edge", () => {
    it("refuses a body over the size limit with FERRY_PAYLOAD_TOO_LARGE", async () => {
      const big = await launch(JSON.stringify({ handler: "ferry.echo", payload: "x".repeat(200_000) }));
      expect([big.status, big.code]).toEqual([400, "FERRY_PAYLOAD_TOO_LARGE"]);
    });

    it("refuses a payload over max_payload_bytes that fits the request limit", async () => {
      const over = await launch(JSON.stringify({ handler: "ferry.echo", payload: "x".repeat(20_000) }));
      expect([over.status, over.code]).toEqual([400, "FERRY_PAYLOAD_TOO_LARGE"]);
    });

    it("refuses compressed requests", async () => {
      const gzip = await raw("JobService/List", "{}", {
        authorization: `Bearer ${admin}`,
        "content-encoding": "gzip",
      });
      expect(gzip.status).toBeGreaterThanOrEqual(400);
    });

    it("answers a preflight from an origin not allowed with 403 and no CORS grant", async () => {
      const response = await fetch(`${url}/ferry.v1.JobService/Launch`, {
        method: "OPTIONS",
        headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
      });
      expect(response.status).toBe(403);
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    });
  });

  describe("6. hostile bodies", () => {
    it.each([
      ["an unknown field", '{"handler":"ferry.echo","bogus":1}'],
      ["a duplicate key", '{"handler":"ferry.echo","handler":"ferry.sleep"}'],
      ["a duplicate key inside the payload", '{"handler":"ferry.echo","payload":{"a":1,"a":2}}'],
      ["a __proto__ key", '{"handler":"ferry.echo","payload":{"__proto__":{"admin":true}}}'],
      ["an escaped __proto__ key", '{"handler":"ferry.echo","payload":{"x":{"\\u005f_proto__":1}}}'],
      ["a constructor key", '{"handler":"ferry.echo","payload":{"constructor":{"prototype":{}}}}'],
      ["nesting 100 deep", `{"handler":"ferry.echo","payload":${"[".repeat(100)}${"]".repeat(100)}}`],
      ["a number too large for a double", '{"handler":"ferry.echo","payload":1e400}'],
      ["an int32 out of range", '{"handler":"ferry.echo","options":{"priority":99999999999}}'],
      ["a negative attempts", '{"handler":"ferry.echo","options":{"attempts":-1}}'],
      ["a path as handler", '{"handler":"../../etc/passwd"}'],
      ["a URL as handler", '{"handler":"https://evil.example/x.js"}'],
      ["a file URL as handler", '{"handler":"file:///etc/passwd"}'],
      ["an empty handler", '{"handler":""}'],
      ["a bad duration", '{"handler":"ferry.echo","options":{"delay":"soon"}}'],
      ["a bad serializer", '{"handler":"ferry.echo","options":{"serializer":"v8"}}'],
      ["not JSON", "{handler: ferry.echo}"],
      ["a truncated body", '{"handler":"ferry.ec'],
    ])("refuses %s with FERRY_INVALID_ARGUMENT", async (_what, body) => {
      const answer = await launch(body);
      expect({ status: answer.status, code: answer.code }).toEqual(invalid);
    });

    it("refuses invalid UTF-8 in JSON and in binary protobuf", async () => {
      const bytes = Buffer.concat([
        Buffer.from('{"handler":"ferry.'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]);
      const json = await raw("JobService/Launch", bytes);
      expect({ status: json.status, code: json.code }).toEqual(invalid);
      // LaunchRequest field 1 (handler), two bytes that are not UTF-8.
      const binary = await raw(
        "JobService/Launch",
        new Uint8Array([0x0a, 0x02, 0xff, 0xfe]),
        undefined,
        "application/proto",
      );
      expect({ status: binary.status, code: binary.code }).toEqual(invalid);
    });

    it("refuses prototype keys and deep nesting in a payload sent as binary protobuf", async () => {
      for (const payload of [{ constructor: 1 }, { a: { prototype: {} } }, nest(80)]) {
        const message = create(LaunchRequestSchema, {
          handler: "ferry.echo",
          payload: fromJson(ValueSchema, payload),
        });
        const answer = await raw(
          "JobService/Launch",
          toBinary(LaunchRequestSchema, message),
          undefined,
          "application/proto",
        );
        expect({ status: answer.status, code: answer.code }).toEqual(invalid);
      }
    });

    it("refuses a handle of the wrong shape, and answers a guessed one as not found", async () => {
      const bad = await raw("JobService/Status", '{"handle":{"id":"../x","cookie":"y"}}');
      expect([bad.status, bad.code]).toEqual([404, "FERRY_NOT_FOUND"]);
      const guessed = await raw(
        "JobService/Status",
        '{"handle":{"id":"01a2183e-7bc6-7000-a4d9-ed78bc49cc66","cookie":"DxGxlVp672wHT4LhhCwpaA"}}',
      );
      expect([guessed.status, guessed.code]).toEqual([404, "FERRY_NOT_FOUND"]);
    });
  });

  it("stored nothing for refused calls, stays healthy, leaks nothing, logs no payload or token", async () => {
    // One good launch, with the marker in its payload.
    const good = await launch(JSON.stringify({ handler: "ferry.echo", payload: { note: SECRET_PAYLOAD } }));
    expect(good.status).toBe(200);
    const stats = await raw("AdminService/Stats", "{}");
    expect(JSON.parse(stats.text)).toMatchObject({ launched: "1" });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    for (const text of answers) {
      expect(text).not.toMatch(/\bat .+:\d+:\d+|node_modules|\/src\/|SELECT |INSERT |sqlite|postgres/i);
    }
    const log = daemon!.log();
    expect(log).toContain("listening on");
    expect(log).not.toContain(SECRET_PAYLOAD);
    for (const token of [admin, submitter, viewer]) expect(log).not.toContain(token.slice(6));
  });
});
