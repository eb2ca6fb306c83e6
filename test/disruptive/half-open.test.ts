/**
 * A half-open connection: every connection of an in-process Ferry (pool, LISTEN, lease keeper)
 * goes through a TCP proxy, and the proxy freezes mid-run: nothing is forwarded, nothing is
 * closed, as when a NAT entry or a peer vanishes without a FIN. Calls must fail with
 * FERRY_STORE_UNAVAILABLE within a bound set by the store's queryTimeoutMs (not hang on dead
 * sockets), the process must not crash, the dead LISTEN connection must be noticed within about
 * two ping intervals, and after the thaw work resumes with a new LISTEN connection.
 */
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, Ferry, Worker } from "../../src/index.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { freshPgSchema } from "../conformance/stores.js";
import { faultHandlers, observeStore } from "../faults/fixtures/handlers.js";
import { LedgerWriter } from "../faults/fixtures/ledger.js";
import { eventually, readLedger, sleep, TIMING } from "../faults/helpers.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { tempDir } from "../helpers/temp.js";
import {
  auditThroughLostAnswers,
  drainThrough,
  launchStream,
  listenerBackends,
  PG_URL,
  requirePostgres,
} from "./helpers.js";
import { expectEveryJobCompleted } from "./scenario.js";

const QUERY_TIMEOUT_MS = 2_000;
const PING_MS = 1_000;
const FREEZE_MS = 10_000;
/** A read is retried once on a lost connection: two timeouts, plus scheduling slack. */
const CALL_BOUND_MS = 2 * QUERY_TIMEOUT_MS + 1_500;

interface Attempt {
  readonly what: string;
  readonly ms: number;
  readonly code: string;
}

/** Runs a call that must fail, and answers how long it took and with what code. */
async function failing(what: string, call: () => Promise<unknown>): Promise<Attempt> {
  const began = Date.now();
  try {
    await call();
    return { what, ms: Date.now() - began, code: "succeeded" };
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return { what, ms: Date.now() - began, code: typeof code === "string" ? code : String(error) };
  }
}

describe("a half-open connection to PostgreSQL (frozen TCP proxy)", () => {
  // Each test fails (not skipped) when PostgreSQL is not there.
  beforeEach(requirePostgres);
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it(
    "fails calls with FERRY_STORE_UNAVAILABLE within the query timeout, then recovers with LISTEN back",
    async () => {
      const { url, schema, drop } = freshPgSchema();
      cleanups.push(drop);
      const target = new URL(PG_URL);
      const proxy: TcpProxy = await startTcpProxy({
        host: target.hostname,
        port: Number(target.port || 5432),
      });
      cleanups.push(() => proxy.close());
      const proxied = new URL(url);
      proxied.hostname = "127.0.0.1";
      proxied.port = String(proxy.port);
      // Its backends carry the schema name: the test can tell its LISTEN connection from others'.
      proxied.searchParams.set("application_name", schema);

      // The test launches and inspects over a direct connection; the worker's Ferry goes through the proxy.
      const direct = await Ferry.open({ store: url });
      cleanups.push(() => direct.close({ grace: 0 }));
      const store = new PostgresStore(proxied.toString(), {
        queryTimeoutMs: QUERY_TIMEOUT_MS,
        listenerPingMs: PING_MS,
      });
      cleanups.push(() => store.close());
      const ferry = await Ferry.open({ store });
      cleanups.push(() => ferry.close({ grace: 0 }));
      const dir = tempDir("ferry-halfopen-");
      cleanups.push(async () => dir.remove());
      const ledgerPath = join(dir.path, "ledger.jsonl");
      const ledger = new LedgerWriter(ledgerPath, "proxied");
      const worker = new Worker(observeStore(store, ledger), {
        handlers: faultHandlers(ledger),
        concurrency: 8,
        lease: "3s",
        rescueInterval: "1s",
        // Long: a job picked up within a second after the thaw was woken by a notification.
        pollInterval: "30s",
      });
      const workerErrors: string[] = [];
      worker.on("error", ({ error }) => workerErrors.push(String(error)));
      await worker.start();
      cleanups.push(() => worker.stop({ grace: 0 }));
      const connectsBefore = store.listenerConnects;
      expect(store.listening).toBe(true);

      const stream = launchStream(direct, { ms: 200 }, 100);
      cleanups.push(() => stream.stop());
      await eventually(() => readLedger(ledgerPath).some((e) => e.ev === "start"), "a job to start");
      await sleep(1_000);
      const h = stream.acknowledged[0]!.handle;

      proxy.freeze();
      const frozenAt = Date.now();
      // The LISTEN connection's ping goes unanswered: noticed within about two ping intervals.
      const noticed = eventually(
        () => !store.listening,
        "the dead LISTEN connection to be noticed",
        10_000,
      ).then(() => Date.now() - frozenAt);
      // Calls at once (idle pooled connections), then on connections the timeouts dropped, then
      // on new ones; each round starts on time, whatever the one before it is doing.
      const rounds = [0, 2_500, 5_000].map(async (at) => {
        await sleep(at);
        return Promise.all([
          failing("status", () => ferry.status(h)),
          failing("launch", () => ferry.launch("fault.quick", null)),
          failing("now", () => store.now()),
          failing("list", async () => {
            for await (const _ of ferry.list({ limit: 5 })) break;
          }),
        ]);
      });
      const attempts: Attempt[] = (await Promise.all(rounds)).flat();
      const noticedMs = await noticed;
      await sleep(Math.max(0, frozenAt + FREEZE_MS - Date.now()));
      expect(proxy.frozen).toBe(true);
      proxy.thaw();
      const thawedAt = Date.now();

      expect(
        attempts.filter((a) => a.code !== ErrorCode.StoreUnavailable),
        "calls while frozen fail with FERRY_STORE_UNAVAILABLE",
      ).toEqual([]);
      expect(
        attempts.filter((a) => a.ms > CALL_BOUND_MS),
        `calls fail within ${CALL_BOUND_MS} ms`,
      ).toEqual([]);
      expect(noticedMs).toBeLessThanOrEqual(2 * PING_MS + 1_500);

      // After the thaw: a new LISTEN connection, calls succeed, every acknowledged job completes.
      await eventually(
        () => store.listening && store.listenerConnects > connectsBefore,
        "the LISTEN connection to be re-established",
        // The listener's next attempt: at most its back-off cap (5 s) plus a connect timeout.
        5_000 + QUERY_TIMEOUT_MS + 1_000,
      );
      const relistenMs = Date.now() - thawedAt;
      // Exactly one LISTEN connection: the frozen one is gone, the reconnection made no second one.
      const deadline = Date.now() + 10_000;
      while ((await listenerBackends(schema)).length !== 1 && Date.now() < deadline) await sleep(200);
      expect(await listenerBackends(schema)).toHaveLength(1);
      await eventually(
        () =>
          ferry.status(h).then(
            () => true,
            () => false,
          ),
        "calls through the proxy to succeed again",
        15_000,
      );
      await stream.stop();
      expect(stream.unexpected).toEqual([]);
      const handles = stream.acknowledged.map((l) => l.handle);
      const statuses = await drainThrough(direct, handles, TIMING.waitMs);
      const drainedMs = Date.now() - thawedAt;
      expect(statuses.filter((s) => s.state !== "completed")).toEqual([]);
      const { report, problems, lostAnswers } = await auditThroughLostAnswers(
        direct,
        handles.map((handle) => ({ handle, state: "completed" as const })),
        () => readLedger(ledgerPath),
      );
      expect(problems).toEqual([]);
      // Launches through the proxy may have committed before their answer was lost: they run too.
      await expectEveryJobCompleted(schema);

      // Woken by a notification on the new LISTEN connection, not by the 30 s poll.
      const auditedMs = Date.now() - thawedAt;
      const probes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const launchedAt = Date.now();
        const probe = await direct.launch("fault.quick", null);
        const start = await eventually(
          () => readLedger(ledgerPath).find((e) => e.ev === "start" && e.id === probe.id),
          "the probe to start",
          10_000,
        );
        probes.push(start!.t - launchedAt);
        await sleep(200);
      }
      expect(probes.filter((ms) => ms > 1_500)).toEqual([]);

      console.info(
        `half-open: frozen ${thawedAt - frozenAt} ms; dead LISTEN noticed after ${noticedMs} ms (ping ${PING_MS} ms); ` +
          `calls failed in ${attempts.map((a) => `${a.what} ${a.ms}`).join(", ")} ms ` +
          `(queryTimeoutMs ${QUERY_TIMEOUT_MS}); LISTEN back ${relistenMs} ms after the thaw ` +
          `(${store.listenerConnects - connectsBefore} reconnects); drained ${drainedMs} ms and audited ${auditedMs} ms after the thaw; ${handles.length} jobs completed, ` +
          `${report.duplicates} duplicated, ${lostAnswers} COMMIT answers lost (the worker's re-sent completion refused); probes picked up in ${probes.join(", ")} ms; ` +
          `${workerErrors.length} worker store errors; proxy accepted ${proxy.accepted} connections`,
      );
    },
    TIMING.testMs,
  );
});
