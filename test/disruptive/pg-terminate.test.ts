/**
 * Kill every Ferry backend (`pg_terminate_backend`: pools, LISTEN connections, lease-keeper
 * threads, in the worker processes and in the test process) several times while two worker
 * processes run a stream of jobs. The same guarantees as a server restart: nothing acknowledged is
 * lost, duplicates only for jobs in flight at a kill (counted), no worker process exits, no job is
 * left running without a live lease, and every LISTEN connection comes back.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { sleep, TIMING, useFaultEnv } from "../faults/helpers.js";
import {
  drainThrough,
  ensureServerUp,
  launchStream,
  pgStoreOf,
  requirePostgres,
  schemaOf,
  taggedPgStore,
  terminateFerryBackends,
  terminateMidTransaction,
} from "./helpers.js";
import {
  expectEveryJobCompleted,
  expectListenersBack,
  expectNoLateDuplicates,
  probeNotifications,
  WORKER_TIMING,
} from "./scenario.js";

const KILLS = 6;

describe("pg_terminate_backend of every Ferry connection, repeatedly, under a stream of jobs", () => {
  // Each test fails (not skipped) when PostgreSQL is not there.
  beforeEach(requirePostgres);
  const t = useFaultEnv(taggedPgStore());
  afterEach(ensureServerUp);
  afterAll(ensureServerUp);

  it(
    "loses nothing acknowledged, keeps every worker process, and gets LISTEN back",
    async () => {
      const schema = schemaOf(t.url);
      const [a, b] = await Promise.all([t.spawn("a", WORKER_TIMING), t.spawn("b", WORKER_TIMING)]);
      const listenersBefore = pgStoreOf(t.ferry).listenerConnects;
      const stream = launchStream(t.ferry, { ms: 250 }, 40);

      await t.waitFor((e) => e.ev === "start", "the first job to start");
      await sleep(1_500);
      const killed: number[] = [];
      let midTransaction = 0;
      let lastKillAt = 0;
      for (let i = 0; i < KILLS; i++) {
        lastKillAt = Date.now();
        killed.push(await terminateFerryBackends(schema));
        await sleep(200);
        // Then the kills random timing rarely makes: backends caught between two statements.
        midTransaction += await terminateMidTransaction(schema, 500);
        lastKillAt = Date.now();
        await sleep(300 + Math.floor(Math.random() * 300));
      }
      await sleep(1_500);
      await stream.stop();

      expect(a.alive && b.alive, "no worker process exited").toBe(true);
      expect(midTransaction, "backends killed between two statements").toBeGreaterThan(0);
      // Each kill reached at least the three processes' LISTEN connections and pools.
      expect(
        killed.filter((n) => n < 3),
        `backends killed per round: ${killed.join(", ")}`,
      ).toEqual([]);
      expect(stream.unexpected, "launch errors other than FERRY_STORE_UNAVAILABLE").toEqual([]);
      const handles = stream.acknowledged.map((l) => l.handle);
      expect(stream.acknowledged.some((l) => l.at > lastKillAt)).toBe(true);
      const drainedAt = Date.now();
      const statuses = await drainThrough(t.ferry, handles, TIMING.waitMs);
      const drainMs = Date.now() - drainedAt;
      expect(statuses.filter((s) => s.state !== "completed")).toEqual([]);
      expect(a.alive && b.alive, "no worker process exited").toBe(true);

      await expectEveryJobCompleted(schema);

      const { report, lostAnswers } = await expectNoLateDuplicates(t.ferry, handles, t.ledger, lastKillAt);

      await expectListenersBack(t, lastKillAt);
      const reconnects = pgStoreOf(t.ferry).listenerConnects - listenersBefore;
      expect(reconnects, "the test process's LISTEN reconnected after each kill").toBeGreaterThanOrEqual(
        KILLS,
      );
      const probes = await probeNotifications(t, 3);

      const errors = t.ledger().filter((e) => e.ev === "worker-error").length;
      console.info(
        `pg-terminate: ${KILLS} kills (${killed.join(", ")} backends, ${midTransaction} more mid-transaction); ${handles.length} acknowledged ` +
          `launches (${stream.refused.length} refused), all completed, drained in ${drainMs} ms; ` +
          `${report.duplicates} duplicated (${report.extraStarts} extra starts), ${report.refused.length} ` +
          `stale writes refused, ${lostAnswers} COMMIT answers lost, ${errors} worker store errors; test-process LISTEN reconnects ${reconnects}; ` +
          `notification pickup after the kills: ${probes.join(", ")} ms (poll ${WORKER_TIMING.pollMs} ms)`,
      );
      expect(a.alive && b.alive, "no worker process exited").toBe(true);
    },
    TIMING.testMs,
  );
});
