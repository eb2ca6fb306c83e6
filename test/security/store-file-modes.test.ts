/**
 * The files the daemon writes (the SQLite database, its -wal and -shm, the first admin's token)
 * are readable by their owner only, whatever the umask; a database left open to others by an
 * older Ferry is narrowed when opened, and the daemon says so.
 */
import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Ferry } from "../../src/index.js";
import { startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { eventually, tempDir } from "../helpers/temp.js";

const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8).padStart(3, "0");
const SIDES = ["", "-wal", "-shm"];

/** Runs `work` with the most permissive umask, so that only explicit modes protect a file. */
async function withOpenUmask<T>(work: () => Promise<T>): Promise<T> {
  const before = process.umask(0o000);
  try {
    return await work();
  } finally {
    process.umask(before);
  }
}

describe("store and token files are the owner's alone", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("a daemon on a fresh directory leaves ferry.db, -wal, -shm and the admin token at 0600", async () => {
    // The child inherits the umask: 000 would leave SQLite's default 0644 as 0666.
    const daemon: TestDaemon = await withOpenUmask(() => startTestDaemon());
    cleanups.push(daemon.stop);
    // A launch through the API: the database has written its WAL by the time it answers.
    const answer = await fetch(`${daemon.url}/ferry.v1.JobService/Launch`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${daemon.adminToken()}` },
      body: '{"handler":"ferry.echo"}',
    });
    expect(answer.status).toBe(200);
    const db = join(daemon.dir, "ferry.db");
    expect(SIDES.map((side) => [side, modeOf(`${db}${side}`)])).toEqual(SIDES.map((side) => [side, "600"]));
    expect(modeOf(join(daemon.dir, "ferry-admin.token"))).toBe("600");
  });

  it("narrows a database an older Ferry left open to others, and logs it", async () => {
    const dir = tempDir("ferry-modes-");
    cleanups.push(dir.remove);
    const db = join(dir.path, "ferry.db");
    // Held open here, so its -wal and -shm stay, all three made 0644 as an umask of 022 left them.
    const holder = await Ferry.open({ store: `sqlite:${db}` });
    cleanups.push(() => holder.close({ grace: 0 }));
    await holder.launch("demo.job", {});
    for (const side of SIDES) chmodSync(`${db}${side}`, 0o644);

    const daemon = await startTestDaemon({ args: ["--no-plugins", "--store", `sqlite:${db}`] });
    cleanups.push(daemon.stop);
    expect(SIDES.map((side) => [side, modeOf(`${db}${side}`)])).toEqual(SIDES.map((side) => [side, "600"]));
    await eventually(() => daemon.log().includes(`${db} was open to its group or others`), "the warning");
    const warnings = daemon
      .log()
      .split("\n")
      .filter((line) => line.includes("was open to its group or others"))
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(warnings.map((w) => [w.level, w.msg])).toEqual(
      SIDES.map((side) => [40, `${db}${side} was open to its group or others (mode 0644): narrowed to 0600`]),
    );
    // And the jobs in it are read as before.
    expect((await holder.stats()).launched).toBe(1);
  });

  it("the library creates its SQLite database 0600 too", async () => {
    const dir = tempDir("ferry-modes-");
    cleanups.push(dir.remove);
    const db = join(dir.path, "jobs.db");
    const ferry = await withOpenUmask(() => Ferry.open({ store: `sqlite:${db}` }));
    cleanups.push(() => ferry.close({ grace: 0 }));
    await withOpenUmask(() => ferry.launch("demo.job", {}));
    expect(SIDES.map((side) => [side, modeOf(`${db}${side}`)])).toEqual(SIDES.map((side) => [side, "600"]));
  });
});
