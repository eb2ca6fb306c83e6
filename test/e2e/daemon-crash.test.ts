/**
 * `kill -9` of the daemon in the middle of a burst of launches loses no acknowledged job: every
 * handle a client received before the kill is found, with its payload, by a daemon started again
 * on the same store. On each of the three stores; the daemon is a real child process, killed for
 * real, while 16 clients launch over gRPC and Connect JSON.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { JobService } from "../../src/gen/ferry/v1/jobs_pb.js";
import { freshNatsPrefix, freshPgSchema } from "../conformance/stores.js";
import { finished, listening, runFerry } from "../helpers/daemon-process.js";
import { tempDir } from "../helpers/temp.js";

const CLIENTS = 16;
/** The kill comes once this many launches were acknowledged, mid-burst (however loaded the machine). */
const ACKED_BEFORE_KILL = 100;

interface Fresh {
  readonly url: string;
  readonly drop: () => Promise<void> | void;
}

const STORES: Readonly<Record<string, (dir: string) => Fresh>> = {
  sqlite: (dir) => ({ url: `sqlite:${join(dir, "ferry.db")}`, drop: () => undefined }),
  postgres: () => freshPgSchema(),
  nats: () => freshNatsPrefix(),
};
const wanted = process.env.FERRY_TEST_STORES?.split(",") ?? Object.keys(STORES);

describe.each(Object.keys(STORES).filter((name) => wanted.includes(name)))(
  "kill -9 during a launch burst on %s",
  (name) => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it("loses no acknowledged job", async () => {
      const dir = tempDir();
      cleanups.push(dir.remove);
      const store = STORES[name]!(dir.path);
      cleanups.push(store.drop);
      // The daemon's workers take another queue: launched jobs stay put, and the count is exact.
      const env = {
        FERRY_WORKERS__QUEUES: '["elsewhere"]',
        FERRY_LIMITS__LAUNCHES_PER_MINUTE: "1000000",
        FERRY_LIMITS__MAX_ACTIVE_PER_USER: "10000000",
      };
      const start = async () => {
        const child = runFerry(
          ["daemon", "--port", "0", "--no-plugins", "--store", store.url],
          env,
          dir.path,
        );
        cleanups.push(() => {
          if (child.exitCode === null) child.kill("SIGKILL");
        });
        const url = await listening(child);
        const token = readFileSync(join(dir.path, "ferry-admin.token"), "utf8").trim();
        return { child, url, auth: { headers: { authorization: `Bearer ${token}` } } };
      };

      const first = await start();
      const acked: { id: string; cookie: string; n: number }[] = [];
      let stop = false;
      let refusedAfterKill = 0;
      const client = (i: number) =>
        createClient(
          JobService,
          i % 2 === 0
            ? createGrpcTransport({ baseUrl: first.url })
            : createConnectTransport({ baseUrl: first.url, httpVersion: "1.1" }),
        );
      const loops = Array.from({ length: CLIENTS }, async (_, i) => {
        const jobs = client(i);
        for (let n = i; !stop; n += CLIENTS) {
          try {
            const { handle } = await jobs.launch(
              { handler: "ferry.echo", payload: fromJson(ValueSchema, { n }) },
              first.auth,
            );
            acked.push({ id: handle!.id, cookie: handle!.cookie, n });
          } catch (error) {
            // Once the daemon is gone every call fails; before that none may.
            if (!stop) throw error;
            refusedAfterKill++;
          }
        }
      });
      const burstStarted = Date.now();
      while (acked.length < ACKED_BEFORE_KILL && Date.now() - burstStarted < 30_000) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(acked.length).toBeGreaterThanOrEqual(ACKED_BEFORE_KILL);
      const exited = finished(first.child);
      first.child.kill("SIGKILL");
      stop = true;
      expect((await exited).code).toBeNull();
      await Promise.all(loops);

      // A new daemon on the same store finds every acknowledged job, with its payload.
      const second = await start();
      const jobs = createClient(
        JobService,
        createConnectTransport({ baseUrl: second.url, httpVersion: "1.1" }),
      );
      const missing: string[] = [];
      for (let i = 0; i < acked.length; i += 64) {
        await Promise.all(
          acked.slice(i, i + 64).map(async ({ id, cookie, n }) => {
            try {
              const status = await jobs.status({ handle: { id, cookie } }, second.auth);
              expect(status.state).toBe("queued");
            } catch (error) {
              if (ConnectError.from(error).code !== Code.NotFound) throw error;
              missing.push(`${id} (n=${n})`);
            }
          }),
        );
      }
      expect(missing).toEqual([]);
      // And their payloads are whole: the list's previews hold each acknowledged n.
      const previews = new Set<string>();
      let after: string | undefined;
      do {
        const page = await jobs.list(
          { limit: 1000, ...(after === undefined ? {} : { afterId: after }) },
          second.auth,
        );
        for (const row of page.jobs) previews.add(row.preview ?? "");
        after = page.nextAfterId;
      } while (after !== undefined);
      const lost = acked.filter(({ n }) => !previews.has(JSON.stringify({ n })));
      expect(lost).toEqual([]);
      // Calls the kill cut short failed, as they should, rather than hanging.
      expect(refusedAfterKill).toBeGreaterThan(0);
    }, 120_000);
  },
);
