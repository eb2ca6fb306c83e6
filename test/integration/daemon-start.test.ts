/**
 * `startDaemon` in-process: a start-up that fails part-way (here, a port already taken) closes what
 * it had opened, so no worker is left running on the store behind a daemon that never served.
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { Ferry } from "../../src/api/ferry.js";
import { loadConfig } from "../../src/daemon/config.js";
import { startDaemon } from "../../src/daemon/daemon.js";
import { daemonLogger } from "../../src/daemon/log.js";
import { collect, tempDir } from "../helpers/temp.js";

describe("startDaemon", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("closes its store and workers when the port is taken, and answers the listen error", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as { port: number }).port;
    const store = `sqlite:${join(dir.path, "ferry.db")}`;
    const config = loadConfig({
      overrides: {
        store: { url: store },
        server: { port, auth_enabled: false },
        plugins: { enabled: false },
      },
    });

    await expect(startDaemon(config, daemonLogger(new PassThrough()))).rejects.toMatchObject({
      code: "EADDRINUSE",
    });

    const ferry = await Ferry.open({ store });
    cleanups.push(() => ferry.close());
    expect(await collect(ferry.workers())).toEqual([]);
  });
});
