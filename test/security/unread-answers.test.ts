/**
 * Answers to a reader that never reads cannot pile up in the daemon's memory. Before: a viewer
 * opened HTTP/2 connections with a flow-control window of 0 and asked each of 100 streams for a
 * 1,000-row List (~405 KB): 8 connections took the daemon's RSS from 129 to 591 MB, for good.
 * Now each user has at most `limits.max_calls_in_flight_per_user` calls in flight, counted until
 * the answer has left (FERRY_QUOTA_EXCEEDED past it), and an answer that stays unsent for
 * `limits.answer_stall_timeout` is reset, which frees its memory and its place.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DaemonWithUsers, startDaemonWithUsers } from "./daemon-with-users.js";
import { FRAME, H2_ERROR, RawH2 } from "./raw-h2.js";

const LIST = "/ferry.v1.JobService/List";
const IN_FLIGHT = 8;

describe("answers a client does not read", () => {
  let d: DaemonWithUsers | undefined;
  let viewer = "";
  beforeAll(async () => {
    d = await startDaemonWithUsers({
      FERRY_LIMITS__MAX_CALLS_IN_FLIGHT_PER_USER: String(IN_FLIGHT),
      FERRY_LIMITS__ANSWER_STALL_TIMEOUT: "2s",
    });
    // 300 queued jobs with long labels on a queue no worker takes: a List of them is ~120 KB.
    const jobs = Array.from({ length: 300 }, (_, i) => ({
      handler: "ferry.echo",
      options: { queue: "parked", label: `${"L".repeat(250)}${i}` },
    }));
    await d.jobs.launchMany({ jobs }, d.root);
    viewer = (await d.user("vic", { role: "viewer" })).token;
  }, 60_000);
  afterAll(() => d?.daemon.stop());

  it("refuses a user's calls past the cap while answers wait unread, then resets them", async () => {
    const port = Number(new URL(d!.daemon.url).port);
    const body = Buffer.from(JSON.stringify({ limit: 1000 }));
    // A raw client never grants the daemon window: its initial window is 0 (SETTINGS below),
    // so no answer's DATA can leave.
    const raw = await RawH2.connect(port);
    const streams = Array.from({ length: 40 }, (_, i) => 2 * i + 1);
    try {
      raw.together(() => {
        raw.zeroWindow();
        for (const id of streams) {
          raw.headers(id, [
            [":method", "POST"],
            [":scheme", "http"],
            [":path", LIST],
            [":authority", "127.0.0.1"],
            ["content-type", "application/json"],
            ["authorization", `Bearer ${viewer}`],
          ]);
          raw.data(id, body, true);
        }
      });
      // Every stream gets its head: 200 for the few in flight, 429 for the rest.
      await raw.waitFor(
        () => streams.every((id) => raw.frames.some((f) => f.type === FRAME.HEADERS && f.stream === id)),
        "every stream's head",
      );
      const statuses = streams.map((id) => {
        const head = raw.frames.find((f) => f.type === FRAME.HEADERS && f.stream === id)!;
        // HPACK static entries: 0x88 is ":status: 200"; 429 goes out as a literal.
        return head.payload[0] === 0x88 ? 200 : 429;
      });
      expect(statuses.filter((s) => s === 200).length).toBe(IN_FLIGHT);

      // Another user is not held back by the viewer's unread answers.
      const list = await d!.jobs.list({ limit: 5 }, d!.root);
      expect(list.jobs.length).toBe(5);

      // The unread answers are reset once stalled, and the viewer's places come back.
      const answered = streams.filter((_, i) => statuses[i] === 200);
      await raw.waitFor(
        () => answered.every((id) => raw.resets().get(id) === H2_ERROR.CANCEL),
        "the stalled answers reset",
        8_000,
      );
      const again = await fetch(`${d!.daemon.url}${LIST}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${viewer}` },
        body: JSON.stringify({ limit: 1 }),
      });
      expect(again.status).toBe(200);
    } finally {
      raw.close();
    }
  });

  it("answers the refused calls with FERRY_QUOTA_EXCEEDED", async () => {
    const session = http2.connect(d!.daemon.url, { settings: { initialWindowSize: 0 } });
    session.on("error", () => undefined);
    try {
      const heads = Array.from({ length: IN_FLIGHT + 4 }, () => {
        const stream = session.request({
          ":method": "POST",
          ":path": LIST,
          "content-type": "application/json",
          authorization: `Bearer ${viewer}`,
        });
        stream.on("error", () => undefined);
        stream.end(JSON.stringify({ limit: 1000 }));
        return new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("response", resolve));
      });
      const all = await Promise.all(heads);
      const refused = all.filter((h) => Number(h[":status"]) === 429);
      expect(refused.length).toBe(4);
      for (const h of refused) expect(h["ferry-error-code"]).toBe("FERRY_QUOTA_EXCEEDED");
    } finally {
      session.destroy();
    }
  });
});
