/**
 * Every connection to the NATS server (the test process's Ferry, two worker processes and their
 * lease-keeping threads) goes
 * through a proxy, and the proxy drops them mid-run while a burst of jobs runs:
 *
 * - half-open (test/helpers/tcp-proxy.ts frozen): nothing is forwarded, nothing is closed, until
 *   the clients' pings go unanswered and they dial again; then the proxy thaws;
 * - cut: every connection is reset and new ones are refused for a few seconds.
 *
 * Calls while the network is gone fail with FERRY_STORE_UNAVAILABLE instead of hanging, every
 * client reconnects, and the run finishes with nothing lost (the ledger audit), duplicates only
 * for jobs in flight when the network went, no worker process exiting, and nothing left running.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, type Handle } from "../../src/index.js";
import { collect, eventually, type FaultEnv, sleep, TIMING, useFaultEnv } from "../faults/helpers.js";
import { drainThrough } from "./helpers.js";
import {
  duplicatesOutsideDisruption,
  expectEveryNatsJobCompleted,
  inFlight,
  type OwnNatsServer,
  ownNatsServer,
  startBusyRun,
} from "./nats-helpers.js";
import { expectNoLateDuplicates, probeNotifications, WORKER_TIMING } from "./scenario.js";

/** The client pings every 5 s and gives up after 3 unanswered: a half-open link is noticed within ~20 s. */
const STALE_NOTICED_MS = 5_000 * 4;
const CUT_MS = 3_000;
/**
 * A call on a dead link fails within two of the client's request timeouts (5 s each): a KV create
 * that times out reads the key before giving up. Plus slack.
 */
const CALL_BOUND_MS = 2 * 5_000 + TIMING.slackMs;
/**
 * The test process's Ferry, and two worker processes with two connections each: the store's and
 * its lease-keeping thread's (opened at the worker's first heartbeat).
 */
const CONNECTIONS = 5;

/** Every connection is up through the proxy (the keepers connect a moment after their workers). */
async function allConnected(open: () => number): Promise<void> {
  await eventually(
    () => open() === CONNECTIONS,
    `${CONNECTIONS} connections through the proxy`,
    TIMING.waitMs,
  );
}

interface Attempt {
  readonly ms: number;
  readonly code: string;
}

/** Runs a call that must fail, and answers how long it took and with what code. */
async function failing(call: () => Promise<unknown>): Promise<Attempt> {
  const began = Date.now();
  try {
    await call();
    return { ms: Date.now() - began, code: "succeeded" };
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return { ms: Date.now() - began, code: typeof code === "string" ? code : String(error) };
  }
}

/** Both worker processes heartbeat again after `since`: their connections came back. */
async function expectWorkersHeartbeating(t: FaultEnv, pids: readonly number[], since: number) {
  await eventually(
    async () => {
      const workers = await collect(t.ferry.workers()).catch(() => []);
      return pids.every((pid) => workers.some((w) => w.pid === pid && w.lastHeartbeatAt > since));
    },
    "every worker process to heartbeat after the network came back",
    TIMING.waitMs,
  );
}

/**
 * The scenario both disruptions share: workers, a burst and a stream of launches; `disrupt` takes
 * the network away and gives it back, answering when it went and when it came back.
 */
async function runThrough(
  t: FaultEnv,
  disrupt: (probe: Handle) => Promise<{ wentAt: number; backAt: number; attempts: Attempt[] }>,
) {
  const { a, b, burst, stream } = await startBusyRun(t);
  const running = inFlight(t.ledger());

  const { wentAt, backAt, attempts } = await disrupt(burst[0]!);
  expect
    .soft(
      attempts.filter((x) => x.code !== ErrorCode.StoreUnavailable),
      "calls on the dead link",
    )
    .toEqual([]);
  expect(
    attempts.filter((x) => x.ms > CALL_BOUND_MS),
    `calls on the dead link fail within ${CALL_BOUND_MS} ms`,
  ).toEqual([]);

  await eventually(
    () => stream.acknowledged.filter((l) => l.at > backAt).length >= 10,
    "launches acknowledged after the network came back",
    TIMING.waitMs,
  );
  await stream.stop();
  expect.soft(stream.unexpected.map(String), "launch errors other than FERRY_STORE_UNAVAILABLE").toEqual([]);

  const handles = [...burst, ...stream.acknowledged.map((l) => l.handle)];
  const drainedAt = Date.now();
  const statuses = await drainThrough(t.ferry, handles, TIMING.waitMs);
  const drainMs = Date.now() - drainedAt;
  expect(statuses.filter((s) => s.state !== "completed")).toEqual([]);
  expect(a.alive && b.alive, "no worker process exited").toBe(true);
  await expectWorkersHeartbeating(t, [a.pid, b.pid], backAt);

  await expectEveryNatsJobCompleted(t.ferry);
  const { report, lostAnswers } = await expectNoLateDuplicates(t.ferry, handles, t.ledger, backAt);
  expect(duplicatesOutsideDisruption(t.ledger(), wentAt, backAt)).toEqual([]);
  const probes = await probeNotifications(t, 3);
  expect(a.alive && b.alive, "no worker process exited").toBe(true);
  const errors = t.ledger().filter((e) => e.ev === "worker-error").length;
  return {
    summary:
      `${running.length} jobs in flight when it went, gone ${backAt - wentAt} ms; ` +
      `calls on the dead link: ${attempts.map((x) => `${x.ms} ms ${x.code}`).join(", ")}; ` +
      `${handles.length} acknowledged launches (${stream.refused.length} refused, ${stream.unexpected.length} with another error), ` +
      `all completed, drained in ${drainMs} ms; ${report.duplicates} duplicated (${report.extraStarts} extra starts), ` +
      `${report.refused.length} stale writes refused, ${lostAnswers} lost answers, ${errors} worker store errors; ` +
      `event pickup after: ${probes.join(", ")} ms (poll ${WORKER_TIMING.pollMs} ms)`,
  };
}

describe("NATS connections half-open (frozen tcp-proxy) under a burst of jobs", () => {
  const nats: OwnNatsServer = ownNatsServer({ front: "freeze" });
  const t = useFaultEnv(nats.store);

  it("calls fail instead of hanging, every client reconnects after the thaw, nothing is lost", async () => {
    const { summary } = await runThrough(t, async (probe) => {
      const proxy = nats.proxy!;
      await allConnected(() => proxy.open);
      const acceptedBefore = proxy.accepted;
      proxy.freeze();
      const wentAt = Date.now();
      const attempts = await Promise.all([
        failing(() => t.ferry.status(probe)),
        failing(() => t.ferry.launch("fault.quick", null)),
      ]);
      // Each process notices its dead link by its pings and dials again (the proxy takes the
      // new connection and, frozen, forwards nothing).
      await eventually(
        () => proxy.accepted >= acceptedBefore + CONNECTIONS,
        "the clients to give up on the frozen connections and dial again",
        STALE_NOTICED_MS + 20_000,
      );
      await sleep(1_000);
      proxy.thaw();
      return { wentAt, backAt: Date.now(), attempts };
    });
    console.info(`nats half-open: ${summary}; proxy accepted ${nats.proxy!.accepted} connections`);
  }, 240_000);
});

describe("NATS connections cut (reset, then refused) under a burst of jobs", () => {
  const nats: OwnNatsServer = ownNatsServer({ front: "cut" });
  const t = useFaultEnv(nats.store);

  it("calls fail while cut, every client reconnects when the network is back, nothing is lost", async () => {
    const { summary } = await runThrough(t, async (probe) => {
      const cutter = nats.cutter!;
      await allConnected(() => cutter.open);
      const acceptedBefore = cutter.accepted;
      await cutter.cut();
      const wentAt = Date.now();
      // Calls made while cut: they fail, or wait for the reconnection and succeed; never hang.
      const calls = Promise.all([
        failing(() => t.ferry.status(probe)),
        failing(() => t.ferry.launch("fault.quick", null)),
      ]);
      await sleep(CUT_MS);
      await cutter.restore();
      const backAt = Date.now();
      const attempts = (await calls).filter((x) => x.code !== "succeeded");
      await eventually(
        () => cutter.open >= CONNECTIONS && cutter.accepted >= acceptedBefore + CONNECTIONS,
        "every process to reconnect",
        TIMING.waitMs,
      );
      return { wentAt, backAt, attempts };
    });
    console.info(`nats cut: ${summary}; proxy accepted ${nats.cutter!.accepted} connections`);
  }, 180_000);
});
