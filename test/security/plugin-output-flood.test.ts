/**
 * A plugin's output cannot grow the daemon's memory or flood its log. The daemon read plugin
 * stdout with readline, which keeps a line whole until its newline: 400 MB with none took the
 * daemon from 131 to 567 MB, 600 MB threw "Invalid string length" uncaught and killed it. Now it
 * reads in the pipe's own chunks, cuts a line at MAX_LINE bytes as it reads, and logs at most
 * LOG_BYTES_PER_SECOND of a plugin's output, with one note saying how much it dropped
 * (src/plugins/plugin-output.ts).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LOG_BYTES_PER_SECOND, MAX_LINE } from "../../src/plugins/plugin-output.js";
import type { TestDaemon } from "../helpers/daemon-process.js";
import { expectDaemonUp, pluginDaemonSuite, runJob } from "./plugin-daemon.js";

/** The daemon's peak resident memory so far, in MB (/proc/PID/status). */
const peakMb = (pid: number) =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;

/** The daemon's log lines that carry the plugin's own output. */
const outputLines = (daemon: TestDaemon) =>
  daemon
    .log()
    .split("\n")
    .filter((line) => line.includes('"plugin":"saboteur","stream":"stdout"'))
    .map((line) => JSON.parse(line) as { msg: string });

describe("a plugin flooding its output", () => {
  const suite = pluginDaemonSuite({ fixtures: ["saboteur"] });

  const daemonIsUp = () => expectDaemonUp(suite.daemon);

  it("logs at most its share per second and notes what it dropped", async () => {
    const already = outputLines(suite.daemon).length;
    expect(await runJob(suite.daemon, "saboteur.stdoutFlood", { lines: 20_000, width: 1_000 })).toMatchObject(
      {
        state: "completed",
      },
    );
    // The note comes once the second is over.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const logged = outputLines(suite.daemon).length - already;
    expect(logged).toBeGreaterThan(0);
    // 20 MB offered; a window takes LOG_BYTES_PER_SECOND, and the flood may span a few.
    expect(logged * 1_000).toBeLessThan(4 * LOG_BYTES_PER_SECOND);
    const notes = suite.daemon.log().match(/plugin saboteur: dropped (\d+) lines/g) ?? [];
    expect(notes.length).toBeGreaterThan(0);
    const dropped = notes.reduce((sum, note) => sum + Number(/(\d+) lines/.exec(note)?.[1]), 0);
    expect(logged + dropped).toBe(20_000);
    await daemonIsUp();
  }, 30_000);

  it("writes 600 MB with no newline, and the daemon neither dies nor holds it", async () => {
    const pid = suite.daemon.child.pid!;
    await runJob(suite.daemon, "saboteur.pid");
    const before = peakMb(pid);
    expect(await runJob(suite.daemon, "saboteur.stdoutNoNewline", { mb: 600 })).toMatchObject({
      state: "completed",
      value: 600,
    });
    await daemonIsUp();
    // Read in 64 KiB chunks and dropped: what is left is V8 freeing those buffers late, not the line.
    expect(peakMb(pid) - before).toBeLessThan(100);
    // The line shows at once, cut; the rest of it is skipped.
    const cut = outputLines(suite.daemon).find((line) => line.msg.startsWith("AAAA"));
    expect(cut?.msg).toBe(`${"A".repeat(MAX_LINE)}…`);
  }, 30_000);
});
