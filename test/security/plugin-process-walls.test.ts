/**
 * A process-isolated plugin cannot reach the daemon that runs it. With the daemon as root (as in
 * CI), the plugin's process runs as nobody, under Node's permission model, with only PATH in its
 * environment: it cannot read the daemon's /proc/PID/environ (which holds a secret here) or the
 * admin token file, cannot SIGKILL the daemon, start a process or a thread, or write outside
 * `[plugins] writable_dirs`; the daemon stays up through all of it. A plugin run as the daemon's
 * own user (`user = "root"` here) still meets the permission model's walls.
 */
import { chownSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expectDaemonUp, pluginDaemonSuite, runJob } from "./plugin-daemon.js";

const SECRET = "canary-password-7f3a";
const NOBODY = 65534;

/** The job failed, and by a refusal of the operating system or of Node's permission model. */
const refused = (code: RegExp) => ({ state: "failed", errorInfo: { code: expect.stringMatching(code) } });

describe("a process-isolated plugin under a root daemon", () => {
  const suite = pluginDaemonSuite({
    fixtures: ["intruder"],
    env: { CANARY_SECRET: SECRET },
    prepare: (base) => {
      expect(process.getuid?.()).toBe(0);
      // The one folder plugins may write to, writable by their user.
      const outbox = join(base, "outbox");
      mkdirSync(outbox, { mode: 0o755 });
      chownSync(outbox, NOBODY, NOBODY);
      return { env: { FERRY_PLUGINS__WRITABLE_DIRS: JSON.stringify([outbox]) } };
    },
    // The secret really is in the daemon's environment for a same-user reader to find.
    started: (daemon) =>
      expect(readFileSync(`/proc/${daemon.child.pid}/environ`, "latin1")).toContain(SECRET),
  });
  const outbox = () => join(suite.base, "outbox");

  const daemonIsUp = () => expectDaemonUp(suite.daemon);

  it("runs as nobody, without root's groups, with PATH alone in its environment", async () => {
    expect(suite.daemon.log()).toContain("plugin processes run as nobody (uid 65534)");
    const ran = await runJob(suite.daemon, "intruder.whoami");
    expect(ran).toMatchObject({
      state: "completed",
      value: { uid: NOBODY, gid: NOBODY, groups: [NOBODY], env: ["PATH"] },
    });
  });

  it("cannot read the daemon's environment or its admin token file", async () => {
    const environ = await runJob(suite.daemon, "intruder.environ");
    expect(environ).toMatchObject(refused(/^(ERR_ACCESS_DENIED|EACCES|EPERM)$/));
    expect(JSON.stringify(environ)).not.toContain(SECRET);
    const token = await runJob(suite.daemon, "intruder.read", {
      path: join(suite.daemon.dir, "ferry-admin.token"),
    });
    expect(token).toMatchObject(refused(/^(ERR_ACCESS_DENIED|EACCES)$/));
    expect(JSON.stringify(token)).not.toContain(suite.daemon.adminToken());
    // Even a file anyone may read is out of its reach: the permission model, not only the uid.
    expect(await runJob(suite.daemon, "intruder.read", { path: "/etc/passwd" })).toMatchObject(
      refused(/^ERR_ACCESS_DENIED$/),
    );
    await daemonIsUp();
  });

  it("cannot kill the daemon, which stays up", async () => {
    const pid = suite.daemon.child.pid;
    expect(await runJob(suite.daemon, "intruder.kill")).toMatchObject(refused(/^EPERM$/));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await daemonIsUp();
    expect(suite.daemon.child.pid).toBe(pid);
    expect(await runJob(suite.daemon, "intruder.whoami")).toMatchObject({ state: "completed" });
  });

  it("cannot start a process or a thread", async () => {
    expect(await runJob(suite.daemon, "intruder.spawn")).toMatchObject(refused(/^ERR_ACCESS_DENIED$/));
    expect(await runJob(suite.daemon, "intruder.thread")).toMatchObject(refused(/^ERR_ACCESS_DENIED$/));
    await daemonIsUp();
  });

  it("writes only to the configured writable dirs", async () => {
    const inside = await runJob(suite.daemon, "intruder.write", { path: join(outbox(), "note.txt") });
    expect(inside).toMatchObject({ state: "completed", value: "written by a plugin\n" });
    const ownFolder = join(suite.base, "plugins", "intruder", "index.mjs");
    expect(await runJob(suite.daemon, "intruder.write", { path: ownFolder })).toMatchObject(
      refused(/^ERR_ACCESS_DENIED$/),
    );
    expect(
      await runJob(suite.daemon, "intruder.write", { path: join(suite.base, "elsewhere.txt") }),
    ).toMatchObject(refused(/^ERR_ACCESS_DENIED$/));
    await daemonIsUp();
  });
});

describe("a process-isolated plugin run as the daemon's own user", () => {
  const suite = pluginDaemonSuite({
    fixtures: ["intruder"],
    env: { CANARY_SECRET: SECRET, FERRY_PLUGINS__USER: "root" },
  });

  it("still cannot read the daemon's environment or token, start processes or threads, or write", async () => {
    expect(suite.daemon.log()).toContain("plugin processes run as root, as the daemon does");
    expect(await runJob(suite.daemon, "intruder.whoami")).toMatchObject({
      state: "completed",
      value: { uid: 0 },
    });
    const environ = await runJob(suite.daemon, "intruder.environ");
    expect(environ).toMatchObject(refused(/^ERR_ACCESS_DENIED$/));
    expect(JSON.stringify(environ)).not.toContain(SECRET);
    const token = join(suite.daemon.dir, "ferry-admin.token");
    expect(await runJob(suite.daemon, "intruder.read", { path: token })).toMatchObject(
      refused(/^ERR_ACCESS_DENIED$/),
    );
    expect(await runJob(suite.daemon, "intruder.spawn")).toMatchObject(refused(/^ERR_ACCESS_DENIED$/));
    expect(await runJob(suite.daemon, "intruder.thread")).toMatchObject(refused(/^ERR_ACCESS_DENIED$/));
    expect(await runJob(suite.daemon, "intruder.write", { path: join(suite.base, "x.txt") })).toMatchObject(
      refused(/^ERR_ACCESS_DENIED$/),
    );
    expect((await fetch(`${suite.daemon.url}/healthz`)).status).toBe(200);
  });
});
