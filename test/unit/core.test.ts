import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/core/backoff.js";
import { parseDuration } from "../../src/core/duration.js";
import { toErrorInfo } from "../../src/core/error-info.js";
import { ErrorCode, FerryError } from "../../src/core/errors.js";
import { parseGroupRate, rateWindow } from "../../src/core/group-rate.js";
import { cookieMatches, hashCookie, isCookie, newCookie, newJobId } from "../../src/core/ids.js";
import { cutUtf8 } from "../../src/core/utf8.js";

describe("durations", () => {
  it("parses units and compounds", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration(1500)).toBe(1500);
  });
  it("refuses anything else with FERRY_INVALID_ARGUMENT", () => {
    for (const bad of ["", "5", "5 m", "-1s", "1y", "s", "1e3s", -5, Number.NaN, "9".repeat(40)]) {
      expect(() => parseDuration(bad as string)).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidArgument }),
      );
    }
  });
});

describe("group rates", () => {
  it("reads a count per unit or per duration", () => {
    expect(parseGroupRate("100/m")).toEqual({ limit: 100, periodMs: 60_000 });
    expect(parseGroupRate("5/s")).toEqual({ limit: 5, periodMs: 1_000 });
    expect(parseGroupRate("10/30s")).toEqual({ limit: 10, periodMs: 30_000 });
    expect(parseGroupRate("1/d")).toEqual({ limit: 1, periodMs: 86_400_000 });
  });

  it("refuses anything else with FERRY_INVALID_ARGUMENT", () => {
    for (const bad of [
      "",
      "100",
      "/m",
      "0/m",
      "-1/m",
      "1.5/m",
      "100/x",
      "1/50ms",
      "1/2d",
      "10000000/m",
      100,
      null,
    ]) {
      expect(() => parseGroupRate(bad), String(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidArgument }),
      );
    }
  });

  it("counts in fixed windows aligned to the epoch", () => {
    expect(rateWindow(59_999, 60_000)).toBe(0);
    expect(rateWindow(60_000, 60_000)).toBe(1);
  });
});

describe("backoff", () => {
  const exp = { type: "exponential", baseMs: 1_000, maxMs: 10_000, jitter: 0 } as const;
  it("doubles from the base and stops at the cap", () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(exp, a))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000, 10_000,
    ]);
    expect(backoffDelay({ ...exp, type: "fixed" }, 5)).toBe(1_000);
  });
  it("spreads a share of the delay with jitter", () => {
    const jittered = { ...exp, jitter: 0.5 };
    expect(backoffDelay(jittered, 1, () => 0)).toBe(500);
    expect(backoffDelay(jittered, 1, () => 1)).toBe(1_000);
  });
});

describe("cutting text to bytes", () => {
  it("never splits a character and stays valid UTF-8", () => {
    const text = "a😀é".repeat(100);
    for (let max = 0; max < 40; max++) {
      const cut = cutUtf8(text, max);
      const bytes = Buffer.from(cut, "utf8");
      expect(bytes.length).toBeLessThanOrEqual(max);
      expect(new TextDecoder("utf-8", { fatal: true }).decode(bytes)).toBe(cut);
      expect(text.startsWith(cut)).toBe(true);
    }
  });
  it("replaces a lone surrogate instead of emitting invalid UTF-8", () => {
    const cut = cutUtf8(`${"x".repeat(600)}\uD800`, 2000);
    expect(cut.endsWith("\uFFFD")).toBe(true);
  });
});

describe("shaping thrown values", () => {
  it("keeps a safe code and the retryable flag a thrower gives", () => {
    const info = toErrorInfo(Object.assign(new Error("m"), { code: "E_X", retryable: false }), {
      attempt: 2,
    });
    expect(info).toEqual({ code: "E_X", message: "m", retryable: false, attempt: 2 });
  });
  it("ignores codes that are not short identifiers", () => {
    expect(toErrorInfo({ code: "<script>", message: "m" }, { attempt: 1 }).code).toBe(
      "FERRY_HANDLER_CRASHED",
    );
  });
  it("carries FerryError codes", () => {
    expect(toErrorInfo(new FerryError(ErrorCode.Timeout, "late"), { attempt: 1 }).code).toBe("FERRY_TIMEOUT");
  });
});

describe("ids and cookies", () => {
  it("makes time-ordered ids and 22-character cookies", () => {
    const ids = Array.from({ length: 1000 }, newJobId);
    expect([...ids].sort()).toEqual(ids);
    const cookies = new Set(Array.from({ length: 1000 }, newCookie));
    expect(cookies.size).toBe(1000);
    for (const c of cookies) expect(isCookie(c)).toBe(true);
  });
  it("matches a cookie only against its own hash", () => {
    const cookie = newCookie();
    expect(cookieMatches(cookie, hashCookie(cookie))).toBe(true);
    expect(cookieMatches(newCookie(), hashCookie(cookie))).toBe(false);
    expect(cookieMatches(cookie, null)).toBe(false);
    expect(cookieMatches(cookie, new Uint8Array(5))).toBe(false);
  });
});
