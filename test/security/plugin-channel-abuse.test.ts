/**
 * Nothing a plugin process writes on its message channel can end or stall the daemon. The channel
 * is the child's fd 3, and the permission model does not stop writes to an open fd: with Node's IPC
 * channel there, `writeSync(3, "!\n")` threw a SyntaxError uncaught in the daemon and killed it,
 * from a timer at import too, so after every restart. Now the daemon frames and parses the pipe
 * itself (src/plugins/host-channel.ts): a line that is not a JSON object, or longer than
 * `max_payload_bytes` plus room, kills that plugin process only, its calls fail with
 * FERRY_HANDLER_CRASHED, the log says why, and the next call gets a fresh process.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectDaemonUp, pluginDaemonSuite, pluginsByFolder, runJob } from "./plugin-daemon.js";

/** The daemon's resident memory now and at its peak, in MB (/proc/PID/status). */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

const crashed = { state: "failed", errorInfo: { code: "FERRY_HANDLER_CRASHED" } };

describe("a plugin writing on its message channel", () => {
  const suite = pluginDaemonSuite({ fixtures: ["saboteur", "bootkill"] });

  const daemonIsUp = () => expectDaemonUp(suite.daemon);

  it("kills only that plugin for two bytes that are not JSON, and says why", async () => {
    const before = await runJob(suite.daemon, "saboteur.pid");
    expect(await runJob(suite.daemon, "saboteur.garbage", { text: "!\n" })).toMatchObject(crashed);
    await daemonIsUp();
    expect(suite.daemon.log()).toContain(
      "plugin saboteur broke its message channel: it wrote a message that is not JSON",
    );
    // A fresh process takes the next call.
    const after = await runJob(suite.daemon, "saboteur.pid");
    expect(after).toMatchObject({ state: "completed" });
    expect(after.value).not.toBe(before.value);
  });

  it.each([
    ["JSON that is not an object", "42\n"],
    ["a prototype key", '{"type":"result","id":1,"__proto__":{"ok":true}}\n'],
    ["half a message, then a newline", '{"type":"res\n'],
  ])("kills only that plugin for %s", async (_what, text) => {
    expect(await runJob(suite.daemon, "saboteur.garbage", { text })).toMatchObject(crashed);
    await daemonIsUp();
    expect(await runJob(suite.daemon, "saboteur.pid")).toMatchObject({ state: "completed" });
  });

  it("survives garbage from a timer when no call is running", async () => {
    expect(await runJob(suite.daemon, "saboteur.garbageLater", { text: "!\n" })).toMatchObject({
      state: "completed",
      value: "armed",
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await daemonIsUp();
    expect((await pluginsByFolder(suite.daemon)).saboteur).toMatchObject({ state: "crashed" });
    expect(await runJob(suite.daemon, "saboteur.pid")).toMatchObject({ state: "completed" });
  });

  it("survives a plugin that breaks the channel at import, after every restart", async () => {
    for (let round = 0; round < 3; round++) {
      const ran = await runJob(suite.daemon, "bootkill.hello");
      expect(["completed", "failed"]).toContain(ran.state);
      if (ran.state === "failed") expect(ran).toMatchObject(crashed);
      await new Promise((resolve) => setTimeout(resolve, 600));
      await daemonIsUp();
    }
    expect(suite.daemon.log()).toContain("plugin bootkill broke its message channel");
  }, 30_000);

  it("cuts a 100 MB message off while reading it, not after", async () => {
    const pid = suite.daemon.child.pid!;
    const start = memory(pid);
    expect(await runJob(suite.daemon, "saboteur.rawFlood", { mb: 100 })).toMatchObject(crashed);
    await daemonIsUp();
    expect(suite.daemon.log()).toContain("it wrote a message longer than");
    // Held whole, 100 MB would show in the daemon's peak; cut at 1 MiB + 64 KiB it does not.
    expect(memory(pid).peak - start.peak).toBeLessThan(50);
  });

  it("refuses a too large result in the plugin itself, which lives on", async () => {
    const before = await runJob(suite.daemon, "saboteur.pid");
    expect(await runJob(suite.daemon, "saboteur.bigResult", { mb: 100 })).toMatchObject({
      state: "failed",
      errorInfo: { code: "FERRY_PAYLOAD_TOO_LARGE" },
    });
    expect(await runJob(suite.daemon, "saboteur.pid")).toMatchObject({
      state: "completed",
      value: before.value,
    });
    await daemonIsUp();
  });
});
