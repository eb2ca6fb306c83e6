/**
 * Restart the PostgreSQL server (immediate mode: every backend dies at once, as in a crash) while
 * two worker processes run a stream of jobs. Nothing acknowledged is lost, nothing runs after it
 * finished, duplicates happen only to jobs in flight when the server went away (and are counted),
 * no worker process exits, no job is left running without a live lease, and every process's
 * LISTEN connection comes back: a launch after the restart is picked up by notification, long
 * before the workers' next poll.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { sleep, TIMING, useFaultEnv } from "../faults/helpers.js";
import {
  drainThrough,
  ensureServerUp,
  launchStream,
  listenerBackends,
  pgStoreOf,
  requirePostgres,
  restartServer,
  schemaOf,
  taggedPgStore,
} from "./helpers.js";
import {
  expectEveryJobCompleted,
  expectListenersBack,
  expectNoLateDuplicates,
  probeNotifications,
  WORKER_TIMING,
} from "./scenario.js";

describe("PostgreSQL restart (pg_ctlcluster restart -m immediate) under a stream of jobs", () => {
  // Each test fails (not skipped) when PostgreSQL is not there.
  beforeEach(requirePostgres);
  const t = useFaultEnv(taggedPgStore());
  // Registered after useFaultEnv, so it runs before its cleanup (after-hooks run in reverse).
  afterEach(ensureServerUp);
  afterAll(ensureServerUp);

  it(
    "loses nothing acknowledged, keeps every worker process, and gets LISTEN back",
    async () => {
      const schema = schemaOf(t.url);
      const [a, b] = await Promise.all([t.spawn("a", WORKER_TIMING), t.spawn("b", WORKER_TIMING)]);
      const stream = launchStream(t.ferry, { ms: 250 }, 40);

      await t.waitFor((e) => e.ev === "start", "the first job to start");
      await sleep(2_000);
      const restart = await restartServer();
      const downMs = restart.backAt - restart.startedAt;
      await sleep(3_000);
      await stream.stop();

      expect(stream.unexpected, "launch errors other than FERRY_STORE_UNAVAILABLE").toEqual([]);
      const handles = stream.acknowledged.map((l) => l.handle);
      expect(
        stream.acknowledged.some((l) => l.at > restart.backAt),
        "launches after the restart",
      ).toBe(true);
      const drainedAt = Date.now();
      const statuses = await drainThrough(t.ferry, handles, TIMING.waitMs);
      const drainMs = Date.now() - drainedAt;
      expect(statuses.filter((s) => s.state !== "completed")).toEqual([]);

      expect(a.alive && b.alive, "no worker process exited").toBe(true);

      await expectEveryJobCompleted(schema);

      const { report, lostAnswers } = await expectNoLateDuplicates(
        t.ferry,
        handles,
        t.ledger,
        restart.backAt,
      );

      await expectListenersBack(t, restart.startedAt);
      expect(pgStoreOf(t.ferry).listenerConnects, "the test process's LISTEN reconnected").toBeGreaterThan(1);
      const probes = await probeNotifications(t, 3);

      const errors = t.ledger().filter((e) => e.ev === "worker-error").length;
      console.info(
        `pg-restart: restart took ${downMs} ms; ${handles.length} acknowledged launches ` +
          `(${stream.refused.length} refused while down), all completed, drained in ${drainMs} ms; ` +
          `${report.duplicates} duplicated (${report.extraStarts} extra starts), ` +
          `${report.refused.length} stale writes refused, ${lostAnswers} COMMIT answers lost, ${errors} worker store errors; ` +
          `notification pickup after restart: ${probes.join(", ")} ms (poll ${WORKER_TIMING.pollMs} ms); ` +
          `listeners: ${(await listenerBackends(schema)).length}`,
      );
      expect(a.alive && b.alive, "no worker process exited").toBe(true);
    },
    TIMING.testMs,
  );
});
