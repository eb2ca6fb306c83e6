/**
 * What the job commands read from their command line and show on a terminal, without a daemon:
 * handles, whole numbers, JSON payloads (argument or stdin), the progress line, durations.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { formatHandle, integerOption, parseHandle, readPayload } from "../../src/cli/args.js";
import { progressLine } from "../../src/cli/follow-job.js";
import { formatMs } from "../../src/cli/output.js";

const usage = { code: "FERRY_INVALID_ARGUMENT" };

describe("command-line arguments", () => {
  it("splits a handle at the first dot and refuses any other shape", () => {
    const handle = { id: "01a21850-fbf4-7000-9433-8065614e4c61", cookie: "Ba10S43r_dPvJLrvCaP7Ng" };
    expect(parseHandle(formatHandle(handle))).toEqual(handle);
    for (const bad of ["", "nodot", ".cookie", "id.", "id.coo.kie", "id.cookie ", "../x.y", "a b.c"]) {
      expect(() => parseHandle(bad), bad).toThrow(expect.objectContaining(usage));
    }
  });

  it("takes whole numbers within int32 and the option's minimum", () => {
    const attempts = integerOption("--attempts", 1);
    expect(attempts("3")).toBe(3);
    for (const bad of ["0", "-1", "1.5", "x", "", "2147483648", "1e3"]) {
      expect(() => attempts(bad), bad).toThrow(expect.objectContaining(usage));
    }
    expect(integerOption("--priority")("-5")).toBe(-5);
  });

  it("reads a payload from the argument or stdin, null when absent, refusing what the daemon would", async () => {
    expect(await readPayload(undefined)).toBeNull();
    expect(await readPayload('{"x":[1,"a",null]}')).toEqual({ x: [1, "a", null] });
    expect(await readPayload("-", Readable.from([Buffer.from('{"from":'), Buffer.from('"stdin"}')]))).toEqual(
      {
        from: "stdin",
      },
    );
    for (const bad of [
      '{"__proto__":{"admin":true}}',
      '{"constructor":{"prototype":{}}}',
      '{"constructor":1}',
      '{"a":1,"a":2}',
      "{nope}",
      "",
    ]) {
      await expect(readPayload(bad), bad).rejects.toMatchObject(usage);
    }
  });
});

describe("terminal output", () => {
  it("shows state, progress, attempt and elapsed seconds on the progress line", () => {
    expect(progressLine(undefined, 1_500)).toBe("waiting  1s");
    const running = { state: "running", progress: 0.42, attempts: 1, maxAttempts: 3 } as const;
    expect(progressLine(running, 12_345)).toBe("running  42%  attempt 1/3  12s");
    expect(progressLine({ state: "queued", progress: null, attempts: 0 }, 0)).toBe("queued  0s");
    // Before the status told the attempt limit, the line shows the attempt alone.
    expect(progressLine({ state: "running", progress: null, attempts: 2 }, 0)).toBe("running  attempt 2  0s");
  });

  it("writes durations in their largest whole unit", () => {
    expect([900_000, 86_400_000, 90_000, 1_500, 0].map(formatMs)).toEqual([
      "15m",
      "1d",
      "90s",
      "1500ms",
      "0ms",
    ]);
  });
});
