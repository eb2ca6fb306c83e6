/**
 * Restart the NATS server (SIGTERM, store folder kept, back on the same port after 1.5 s) while
 * two worker processes run a burst of jobs, slow ones in flight with their dispatches un-acked,
 * and a stream of launches goes on. Nothing acknowledged is lost, a job runs twice only when it
 * was in flight at the restart (its lease ran out while the store was away), launches while the
 * server is away fail with FERRY_STORE_UNAVAILABLE, no worker process exits, no job is left
 * running, and the workers' event subscriptions come back: a launch after the restart is picked
 * up long before the workers' next poll.
 */
import { describe, expect, it } from "vitest";
import { eventually, TIMING, useFaultEnv } from "../faults/helpers.js";
import { drainThrough } from "./helpers.js";
import {
  duplicatesOutsideDisruption,
  expectEveryNatsJobCompleted,
  inFlight,
  ownNatsServer,
  prefixOf,
  startBusyRun,
  workConsumers,
} from "./nats-helpers.js";
import { expectNoLateDuplicates, probeNotifications, WORKER_TIMING } from "./scenario.js";

/** How long nothing listens on the server's port. */
const DOWN_MS = 1_500;

describe("a NATS server restart (SIGTERM, same port and folder) under a burst of jobs", () => {
  const nats = ownNatsServer();
  const t = useFaultEnv(nats.store);

  it("loses nothing acknowledged, keeps every worker process, and gets events back", async () => {
    const prefix = prefixOf(t.url);
    // Mid-run: slow jobs (4 s) running, some quick ones done, most still waiting.
    const { a, b, burst, stream } = await startBusyRun(t);
    const held = await workConsumers([nats.server.url], prefix);
    expect(held.ackPending, "dispatches out with workers, not acked").toBeGreaterThan(0);
    const running = inFlight(t.ledger());

    const restart = await nats.restart(DOWN_MS);
    // Launches go on until some are acknowledged by the restarted server.
    await eventually(
      () => stream.acknowledged.filter((l) => l.at > restart.backAt).length >= 10,
      "launches acknowledged after the restart",
      TIMING.waitMs,
    );
    await stream.stop();

    expect
      .soft(stream.unexpected.map(String), "launch errors other than FERRY_STORE_UNAVAILABLE")
      .toEqual([]);
    const handles = [...burst, ...stream.acknowledged.map((l) => l.handle)];
    const drainedAt = Date.now();
    const statuses = await drainThrough(t.ferry, handles, TIMING.waitMs);
    const drainMs = Date.now() - drainedAt;
    expect(statuses.filter((s) => s.state !== "completed")).toEqual([]);
    expect(a.alive && b.alive, "no worker process exited").toBe(true);

    await expectEveryNatsJobCompleted(t.ferry);
    const { report, lostAnswers } = await expectNoLateDuplicates(t.ferry, handles, t.ledger, restart.backAt);
    expect(duplicatesOutsideDisruption(t.ledger(), restart.stoppedAt, restart.backAt)).toEqual([]);

    const probes = await probeNotifications(t, 3);
    const after = await workConsumers([nats.server.url], prefix);
    const errors = t.ledger().filter((e) => e.ev === "worker-error").length;
    console.info(
      `nats-restart: down ${restart.backAt - restart.stoppedAt} ms with ${running.length} jobs in flight and ` +
        `${held.ackPending} dispatches un-acked; ${handles.length} acknowledged launches ` +
        `(${stream.refused.length} refused while down, ${stream.unexpected.length} with another error), ` +
        `all completed, drained in ${drainMs} ms; ${report.duplicates} duplicated (${report.extraStarts} extra starts), ` +
        `${report.refused.length} stale writes refused, ${lostAnswers} lost answers, ${errors} worker store errors; ` +
        `event pickup after the restart: ${probes.join(", ")} ms (poll ${WORKER_TIMING.pollMs} ms); ` +
        `consumers now: ${JSON.stringify(after)}`,
    );
    expect(a.alive && b.alive, "no worker process exited").toBe(true);
  }, 180_000);
});
