/** The remote client's options and its reading of RPC errors: checked and decided before any call. */
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { isUnreachable, toFerryError } from "../../src/client/errors.js";
import { resolveConnectOptions } from "../../src/client/options.js";
import { payloadValue } from "../../src/client/to-proto.js";
import { FerryError } from "../../src/core/errors.js";
import { ErrorDetailSchema } from "../../src/gen/ferry/v1/errors_pb.js";

describe("resolveConnectOptions", () => {
  it("defaults to FERRY_SERVER and FERRY_TOKEN, else loopback and no token, over gRPC", () => {
    expect(resolveConnectOptions({}, {})).toEqual({
      server: "http://127.0.0.1:50051",
      token: undefined,
      tls: undefined,
      transport: "grpc",
      resumeForMs: 60_000,
    });
    const fromEnv = resolveConnectOptions(
      {},
      { FERRY_SERVER: " https://jobs.example:7000/ ", FERRY_TOKEN: "t0k" },
    );
    expect([fromEnv.server, fromEnv.token]).toEqual(["https://jobs.example:7000", "t0k"]);
    const given = resolveConnectOptions(
      { server: "http://h:1", token: "x", transport: "connect-json" },
      { FERRY_TOKEN: "y" },
    );
    expect([given.server, given.token, given.transport]).toEqual(["http://h:1", "x", "connect-json"]);
  });

  it("refuses a server that is no http(s) URL, a token that could break its header, an unknown transport", () => {
    for (const options of [
      { server: "jobs.example" },
      { server: "ftp://h" },
      { token: "a\r\nx-admin: 1" },
      { token: "x".repeat(5000) },
      { transport: "carrier-pigeon" as "grpc" },
      { resumeFor: "soon" },
    ]) {
      expect(() => resolveConnectOptions(options, {})).toThrowError(
        expect.objectContaining({ code: "FERRY_INVALID_ARGUMENT" }),
      );
    }
  });
});

describe("toFerryError", () => {
  const withDetail = (code: string) =>
    new ConnectError("no such job", Code.NotFound, {}, [{ desc: ErrorDetailSchema, value: { code } }]);

  it("reads the typed detail first, then the header, then the status", () => {
    expect(toFerryError(withDetail("FERRY_NOT_FOUND")).code).toBe("FERRY_NOT_FOUND");
    const header = new ConnectError("slow down", Code.ResourceExhausted, {
      "ferry-error-code": "FERRY_QUOTA_EXCEEDED",
    });
    expect(toFerryError(header)).toMatchObject({ code: "FERRY_QUOTA_EXCEEDED", message: "slow down" });
    expect(toFerryError(new ConnectError("bad", Code.InvalidArgument)).code).toBe("FERRY_INVALID_ARGUMENT");
    const internal = toFerryError(withDetail("FERRY_INTERNAL"));
    expect([internal.code, internal.details]).toEqual([
      "FERRY_STORE_UNAVAILABLE",
      { ferryCode: "FERRY_INTERNAL" },
    ]);
  });

  it("tells a lost connection (worth resuming) from a refusal", () => {
    const lost = new ConnectError("connect ECONNREFUSED", Code.Unavailable);
    expect(isUnreachable(lost)).toBe(true);
    expect(toFerryError(lost)).toMatchObject({
      code: "FERRY_STORE_UNAVAILABLE",
      details: { unreachable: true },
    });
    expect(isUnreachable(new ConnectError("stream reset", Code.Canceled))).toBe(true);
    expect(isUnreachable(withDetail("FERRY_NOT_FOUND"))).toBe(false);
    expect(isUnreachable(new FerryError("FERRY_TIMEOUT", "late"))).toBe(false);
  });
});

describe("payloadValue", () => {
  const refusal = (payload: unknown) => {
    try {
      payloadValue(payload);
    } catch (error) {
      return (error as FerryError).code;
    }
    return "sent";
  };

  it("sends what JSON holds as it is, and a Date as its text", () => {
    const when = new Date("2026-01-02T03:04:05.000Z");
    expect(toJson(ValueSchema, payloadValue({ a: [1, "x", null, true], when, gone: undefined }))).toEqual({
      a: [1, "x", null, true],
      when: "2026-01-02T03:04:05.000Z",
    });
    expect(toJson(ValueSchema, payloadValue(undefined))).toBeNull();
  });

  it("refuses what JSON.stringify would drop or empty on the way, before sending", () => {
    class Opaque {
      readonly secret = 1;
    }
    for (const payload of [
      { f: () => 1 },
      [Symbol("s")],
      { n: Number.NaN },
      Number.POSITIVE_INFINITY,
      new Map([["a", 1]]),
      { set: new Set([1]) },
      new Uint8Array([1, 2]),
      new Opaque(),
      10n,
    ]) {
      expect(refusal(payload)).toBe("FERRY_SERIALIZATION");
    }
  });
});
