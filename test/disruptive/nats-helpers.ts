/**
 * Plumbing for the tests that disrupt NATS: every server here is a nats-server process the test
 * starts itself (loopback, free ports, its own store folder) and always stops, never the machine's
 * own on 4222. A fault-test store on such a server, a three-node cluster, a proxy that cuts
 * connections, and the end-of-run checks, read through the store (there is no SQL to ask).
 *
 * A missing nats-server binary fails these tests, never skips them.
 */
import { accessSync, constants } from "node:fs";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { expect } from "vitest";
import type { Ferry, LaunchedHandle } from "../../src/index.js";
import type { JobRecord } from "../../src/store/store.js";
import {
  eventually,
  type FaultEnv,
  type FaultStore,
  FIXED_RETRY,
  type LedgerEntry,
  TIMING,
} from "../faults/helpers.js";
import {
  freePort,
  NATS_SERVER_BIN,
  type NatsServerProcess,
  startNatsServer,
} from "../helpers/nats-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { launchStream } from "./helpers.js";
import { WORKER_TIMING } from "./scenario.js";

/** Throws (the test fails, it is not skipped) when there is no nats-server to start. */
export function requireNatsServer(): void {
  try {
    accessSync(NATS_SERVER_BIN, constants.X_OK);
  } catch (error) {
    throw new Error(`no nats-server at ${NATS_SERVER_BIN} (FERRY_TEST_NATS_SERVER overrides)`, {
      cause: error,
    });
  }
  // Still behind its flag (docs/stores.md): set here, so worker processes inherit it too.
}

let prefixes = 0;
const freshPrefix = () => `fd_${process.pid}_${Date.now().toString(36)}_${prefixes++}`;

// --- one server of the test's own ------------------------------------------------------------

export interface OwnNatsServer {
  /** Hands `useFaultEnv` a URL on a new server (through a proxy, if one was asked for). */
  readonly store: FaultStore;
  /** The server as it runs now (a restart replaces it). */
  readonly server: NatsServerProcess;
  /** The proxy in front of it, if `proxy` was asked for. */
  readonly proxy: TcpProxy | undefined;
  readonly cutter: CuttingProxy | undefined;
  /**
   * SIGTERM with its store folder kept, `downMs` of nothing on the port, then the same server
   * again on the same port and folder. Answers when it went down and when it was ready again.
   */
  restart(downMs: number): Promise<{ stoppedAt: number; backAt: number }>;
}

/**
 * A fault-test store on a nats-server of its own, started by `fresh` and stopped (folder removed)
 * by its cleanup. `front: "freeze"` puts test/helpers/tcp-proxy.ts in front (half-open
 * connections), `front: "cut"` a proxy that resets connections; the URL then names the proxy.
 */
export function ownNatsServer(options: { front?: "freeze" | "cut" } = {}): OwnNatsServer {
  let server: NatsServerProcess | undefined;
  let proxy: TcpProxy | undefined;
  let cutter: CuttingProxy | undefined;
  const current = () => {
    if (server === undefined) throw new Error("the NATS server is not started (fresh() was not called)");
    return server;
  };
  return {
    store: {
      name: "nats (own server)",
      async fresh() {
        requireNatsServer();
        server = await startNatsServer(["-js"]);
        let port = server.port;
        if (options.front === "freeze") {
          proxy = await startTcpProxy({ port: server.port });
          port = proxy.port;
        } else if (options.front === "cut") {
          cutter = await startCuttingProxy(server.port);
          port = cutter.port;
        }
        return {
          url: `nats://127.0.0.1:${port}?prefix=${freshPrefix()}`,
          cleanup: async () => {
            await proxy?.close();
            await cutter?.close();
            await server?.stop();
          },
        };
      },
    },
    get server() {
      return current();
    },
    get proxy() {
      return proxy;
    },
    get cutter() {
      return cutter;
    },
    async restart(downMs) {
      const before = current();
      const stoppedAt = Date.now();
      await before.stop({ keepDir: true });
      // The outage itself: how long the port stays dark is what the test is about.
      await new Promise((resolve) => setTimeout(resolve, downMs));
      server = await startNatsServer(["-js"], { port: before.port, dir: before.dir });
      return { stoppedAt, backAt: Date.now() };
    },
  };
}

// --- a cluster -------------------------------------------------------------------------------

export interface NatsCluster {
  readonly nodes: readonly NatsServerProcess[];
  /** `nats://127.0.0.1:<p1>,127.0.0.1:<p2>,…` (Ferry's store URL form, without the query). */
  readonly url: string;
  /** Stops every node still running and removes their folders. */
  stop(): Promise<void>;
}

/**
 * `size` nats-server processes with JetStream, routed to each other on loopback, and answers once
 * JetStream has a meta leader (the cluster can create streams). Nodes are n1, n2, ….
 */
export async function startNatsCluster(size = 3, name = "ferry-t"): Promise<NatsCluster> {
  requireNatsServer();
  const ports = await distinctPorts(2 * size);
  const client = ports.slice(0, size);
  const cluster = ports.slice(size);
  const nodes: NatsServerProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    const started = await Promise.allSettled(
      client.map((port, i) =>
        startNatsServer(
          [
            "-js",
            "--server_name",
            `n${i + 1}`,
            "--cluster_name",
            name,
            "--cluster",
            `nats://127.0.0.1:${cluster[i]}`,
            "--routes",
            cluster
              .filter((_, j) => j !== i)
              .map((p) => `nats://127.0.0.1:${p}`)
              .join(","),
          ],
          { port },
        ),
      ),
    );
    for (const result of started) if (result.status === "fulfilled") nodes.push(result.value);
    const failed = started.find((result) => result.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    const url = `nats://${client.map((port) => `127.0.0.1:${port}`).join(",")}`;
    await waitForMetaLeader(client, nodes);
    return { nodes, url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A fault-test store on a three-node cluster of its own (`?replicas=3`), started by `fresh` and
 * stopped (folders removed) by its cleanup.
 */
export function ownNatsCluster(): { readonly store: FaultStore; readonly cluster: NatsCluster } {
  let cluster: NatsCluster | undefined;
  return {
    store: {
      name: "nats (own three-node cluster)",
      async fresh() {
        cluster = await startNatsCluster(3);
        return {
          url: `${cluster.url}?prefix=${freshPrefix()}&replicas=3`,
          cleanup: async () => cluster?.stop(),
        };
      },
    },
    get cluster() {
      if (cluster === undefined) throw new Error("the NATS cluster is not started (fresh() was not called)");
      return cluster;
    },
  };
}

/** Loopback ports nobody listens on, all different (freePort alone may hand out one twice). */
async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** JetStream answers account info only once the meta group has elected a leader. */
async function waitForMetaLeader(ports: readonly number[], nodes: readonly NatsServerProcess[]) {
  const nc = await connect({ servers: ports.map((port) => `127.0.0.1:${port}`), timeout: 5_000 });
  try {
    await eventually(
      async () => {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2_000 });
          await jsm.getAccountInfo();
          return true;
        } catch {
          return false;
        }
      },
      "the NATS cluster to elect a JetStream meta leader",
      60_000,
    ).catch((error: unknown) => {
      const logs = nodes.map((node, i) => `--- n${i + 1}:\n${node.output().slice(-3_000)}`).join("\n");
      throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
    });
  } finally {
    await nc.close();
  }
}

/** The replicas each stream and KV bucket of this prefix is configured with, and its peers. */
export async function streamReplicas(
  servers: readonly string[],
  prefix: string,
): Promise<{ name: string; replicas: number; peers: number; leader: string | undefined }[]> {
  const nc = await connect({ servers: [...servers], timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc);
    const out: { name: string; replicas: number; peers: number; leader: string | undefined }[] = [];
    for await (const info of jsm.streams.list()) {
      const name = info.config.name;
      if (!name.startsWith(`${prefix}_`) && !name.startsWith(`KV_${prefix}_`)) continue;
      out.push({
        name,
        replicas: info.config.num_replicas,
        peers: info.cluster?.replicas?.length ?? 0,
        leader: info.cluster?.leader,
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  } finally {
    await nc.close();
  }
}

// --- a proxy that cuts -----------------------------------------------------------------------

export interface CuttingProxy {
  readonly port: number;
  /** Connections accepted so far (a reconnecting client shows up here). */
  readonly accepted: number;
  readonly open: number;
  /** Resets every connection and refuses new ones (nothing listens) until `restore`. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A loopback TCP forwarder whose `cut` is a network that dropped everything: open connections
 * get a reset, new ones are refused. test/helpers/tcp-proxy.ts only freezes (half-open) or ends
 * for good; this one comes back on the same port, as a healed network does.
 */
export async function startCuttingProxy(targetPort: number): Promise<CuttingProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let server: Server | undefined;
  let port = 0;

  const listen = async (): Promise<void> => {
    const next = createServer((client) => {
      accepted += 1;
      const upstream = tcpConnect({ host: "127.0.0.1", port: targetPort });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.setNoDelay(true);
        // An error ends the pair; it must not crash the test process.
        socket.on("error", () => undefined);
        socket.on("close", () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      next.once("error", reject);
      next.listen(port, "127.0.0.1", () => {
        next.off("error", reject);
        resolve();
      });
    });
    const address = next.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");
    port = address.port;
    server = next;
  };
  const stopListening = async (): Promise<void> => {
    const was = server;
    server = undefined;
    if (was !== undefined) await new Promise<void>((resolve) => was.close(() => resolve()));
  };
  const resetAll = () => {
    for (const socket of [...sockets]) socket.resetAndDestroy();
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size / 2;
    },
    async cut() {
      const closing = stopListening();
      resetAll();
      await closing;
    },
    async restore() {
      if (server === undefined) await listen();
    },
    async close() {
      const closing = stopListening();
      resetAll();
      await closing;
    },
  };
}

// --- end-of-run checks -----------------------------------------------------------------------

/** Every job record of the store, page by page (the NATS store lists by scanning its bucket). */
export async function allJobs(ferry: Ferry): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await ferry.store.listJobs({ limit: 500, afterId });
    out.push(...page);
    if (page.length < 500) return out;
    afterId = page.at(-1)!.id;
  }
}

/** Jobs by state, and running ones whose lease is gone (expired, or no lease or holder at all). */
export async function natsJobStates(
  ferry: Ferry,
): Promise<{ byState: Record<string, number>; runningWithoutLease: string[]; notCompleted: string[] }> {
  const now = await ferry.store.now();
  const byState: Record<string, number> = {};
  const runningWithoutLease: string[] = [];
  const notCompleted: string[] = [];
  for (const job of await allJobs(ferry)) {
    byState[job.state] = (byState[job.state] ?? 0) + 1;
    if (job.state !== "completed") notCompleted.push(`${job.id} ${job.state} (${job.handler})`);
    if (
      job.state === "running" &&
      (job.leaseExpiresAt === null || job.leaseExpiresAt < now || job.workerId === null)
    ) {
      runningWithoutLease.push(job.id);
    }
  }
  return { byState, runningWithoutLease, notCompleted };
}

/**
 * Every job in the store ends completed (launches whose answer was lost included), and none is
 * left running without a live lease. Soft: the test goes on to its other checks and fails at the end.
 */
export async function expectEveryNatsJobCompleted(ferry: Ferry): Promise<void> {
  let last: Awaited<ReturnType<typeof natsJobStates>> | undefined;
  await eventually(
    async () => {
      last = await natsJobStates(ferry).catch(() => undefined);
      return last !== undefined && last.notCompleted.length === 0;
    },
    "every job in the store to complete",
    TIMING.waitMs,
  ).catch(() => undefined);
  expect
    .soft(last?.notCompleted, `jobs in the store not completed (${JSON.stringify(last?.byState)})`)
    .toEqual([]);
  expect.soft(last?.runningWithoutLease, "jobs running without a live lease").toEqual([]);
}

/** The `?prefix=` of a NATS store URL (several hosts in it are fine). */
export const prefixOf = (url: string): string =>
  new URLSearchParams(url.slice(url.indexOf("?") + 1)).get("prefix") ?? "ferry";

/**
 * What the work stream's consumers hold right now: dispatches out with a worker and not acked yet
 * (`ackPending`), and ones waiting to be pulled (`waiting`). Asked over a connection of its own.
 */
export async function workConsumers(
  servers: readonly string[],
  prefix: string,
): Promise<{ ackPending: number; waiting: number; redelivered: number }> {
  const nc = await connect({ servers: [...servers], timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc);
    const sum = { ackPending: 0, waiting: 0, redelivered: 0 };
    for await (const info of jsm.consumers.list(`${prefix}_WORK`)) {
      sum.ackPending += info.num_ack_pending;
      sum.waiting += info.num_pending;
      sum.redelivered += info.num_redelivered;
    }
    return sum;
  } finally {
    await nc.close();
  }
}

/** Launches `n` fault.sleep jobs at once: every `slowEvery`-th sleeps `slowMs`, the rest `quickMs`. */
export async function launchBurst(
  ferry: Ferry,
  n: number,
  { slowEvery = 4, slowMs = 4_000, quickMs = 300 } = {},
): Promise<LaunchedHandle[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      ferry.launch(
        "fault.sleep",
        { ms: i % slowEvery === 0 ? slowMs : quickMs },
        { attempts: 20, ...FIXED_RETRY },
      ),
    ),
  );
}

/** Jobs whose handler started and has not ended or aborted (running right now, per the ledger). */
export function inFlight(ledger: readonly LedgerEntry[]): string[] {
  const open = new Map<string, number>();
  for (const entry of ledger) {
    if (entry.id === undefined) continue;
    if (entry.ev === "start") open.set(entry.id, (open.get(entry.id) ?? 0) + 1);
    else if (entry.ev === "end" || entry.ev === "abort") open.set(entry.id, (open.get(entry.id) ?? 0) - 1);
  }
  return [...open].filter(([, n]) => n > 0).map(([id]) => id);
}

/**
 * The ledger's rule for running a job twice: its holder lost the lease only because the store was
 * out of reach, so a job ran more than once only if its first run began before the disruption was
 * over (`endedAt`: a claim the server answered while it was shutting down counts as in flight;
 * seen: claims 3 ms after a restart's SIGTERM, re-run after their lease ran out during the
 * downtime), and every claim after the first came after the disruption began. Answers the broken
 * cases.
 */
export function duplicatesOutsideDisruption(
  ledger: readonly LedgerEntry[],
  disruptedAt: number,
  endedAt = disruptedAt,
): string[] {
  const claims = new Map<string, LedgerEntry[]>();
  for (const entry of ledger) {
    if (entry.ev !== "claim" || entry.id === undefined) continue;
    claims.set(entry.id, [...(claims.get(entry.id) ?? []), entry]);
  }
  const broken: string[] = [];
  for (const [id, list] of claims) {
    if (list.length < 2) continue;
    const [first, ...later] = list.sort((x, y) => x.t - y.t) as [LedgerEntry, ...LedgerEntry[]];
    if (first.t >= endedAt)
      broken.push(
        `${id}: first claimed ${first.t - endedAt} ms after the disruption ended, yet claimed again`,
      );
    for (const claim of later) {
      if (claim.t < disruptedAt)
        broken.push(
          `${id}: re-claimed (fence ${claim.fence}) ${disruptedAt - claim.t} ms before the disruption`,
        );
    }
  }
  return broken;
}

/**
 * The busy run a disruption lands in: worker processes a and b, a burst of 48 jobs (slow ones
 * still running, quick ones queued behind them) and a stream of launches every 100 ms, returned
 * once jobs are in flight and some have ended.
 */
export async function startBusyRun(t: FaultEnv) {
  const [a, b] = await Promise.all([t.spawn("a", WORKER_TIMING), t.spawn("b", WORKER_TIMING)]);
  const burst = await launchBurst(t.ferry, 48);
  const stream = launchStream(t.ferry, { ms: 250 }, 100);
  await eventually(
    () => inFlight(t.ledger()).length >= 4 && t.ledger().some((e) => e.ev === "end"),
    "jobs in flight",
    TIMING.waitMs,
  );
  return { a, b, burst, stream };
}
