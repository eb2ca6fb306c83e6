/** The daemon's answers as the wire carries them. */
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { resultJson } from "../../src/daemon/rpc-convert.js";

describe("resultJson", () => {
  it("gives a result as JSON.stringify reads it, a bigint as its decimal text, and never fails", () => {
    const value = { at: new Date(0), big: 12345678901234567890n, list: [1n, "x", null], gone: undefined };
    expect(toJson(ValueSchema, resultJson(value))).toEqual({
      at: "1970-01-01T00:00:00.000Z",
      big: "12345678901234567890",
      list: ["1", "x", null],
    });
    expect(toJson(ValueSchema, resultJson(undefined))).toBeNull();
    expect(toJson(ValueSchema, resultJson(7n))).toBe("7");
  });
});
