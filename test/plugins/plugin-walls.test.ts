/**
 * Who a plugin process runs as (`[plugins] user`) and the Node flags that wall it in: nobody for
 * a root daemon that names no one, never another user for a daemon that is not root, and no flag
 * that would let it start processes, threads or native code.
 */
import { describe, expect, it } from "vitest";
import { hostExecArgv } from "../../src/plugins/host-process.js";
import { resolvePluginUser } from "../../src/plugins/plugin-user.js";

const root = { name: "root", uid: 0, gid: 0 };
const alice = { name: "alice", uid: 1000, gid: 1000 };

describe("the plugin user", () => {
  it("is nobody for a root daemon that names none, and the daemon's own user otherwise", () => {
    expect(resolvePluginUser("", root)).toEqual({ name: "nobody", uid: 65534, gid: 65534 });
    expect(resolvePluginUser("", alice)).toEqual(alice);
    expect(resolvePluginUser("  ", alice)).toEqual(alice);
  });

  it("is a name, a uid or uid:gid for a root daemon", () => {
    expect(resolvePluginUser("nobody", root)).toMatchObject({ uid: 65534, gid: 65534 });
    expect(resolvePluginUser("65534", root)).toMatchObject({ uid: 65534, gid: 65534 });
    expect(resolvePluginUser("4000:4001", root)).toMatchObject({ uid: 4000, gid: 4001 });
    expect(resolvePluginUser("root", root)).toEqual(root);
  });

  it("refuses an unknown user, and another user for a daemon that is not root", () => {
    expect(() => resolvePluginUser("no-such-user-x", root)).toThrow(
      expect.objectContaining({ code: "FERRY_INVALID_ARGUMENT", message: expect.stringMatching(/no user/) }),
    );
    expect(() => resolvePluginUser("nobody", alice)).toThrow(
      expect.objectContaining({
        code: "FERRY_INVALID_ARGUMENT",
        message: expect.stringMatching(/only a daemon running as root can run plugins as another user/),
      }),
    );
    expect(resolvePluginUser("1000:1000", alice)).toMatchObject({ uid: 1000, gid: 1000 });
  });
});

describe("the flags of a plugin process", () => {
  it("turn the permission model on, one path per flag, and grant nothing else", () => {
    const argv = hostExecArgv({ readable: ["/srv/p/acme", "/opt/ferry/src"], writable: ["/var/out"] });
    expect(argv).toContain("--experimental-permission");
    expect(argv.filter((flag) => flag.startsWith("--allow-fs-read="))).toEqual([
      "--allow-fs-read=/srv/p/acme",
      "--allow-fs-read=/opt/ferry/src",
    ]);
    expect(argv.filter((flag) => flag.startsWith("--allow-fs-write="))).toEqual([
      "--allow-fs-write=/var/out",
    ]);
    expect(argv.some((flag) => /^--allow-(child-process|worker|addons|wasi)/.test(flag))).toBe(false);
    expect(
      hostExecArgv({ readable: [], writable: [] }).some((flag) => flag.startsWith("--allow-fs-write")),
    ).toBe(false);
  });
});
