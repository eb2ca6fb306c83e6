/**
 * The conformance harness. Each test gets a fresh store and a Ferry on it (`t.ferry`: workers,
 * store peeks, setup), and `t.api`, the caller's surface under test: that same Ferry for a
 * "library" subject, or for a "remote client" subject a `FerryClient` talking gRPC to the daemon's
 * real services (access checks, limits, conversions) served over `t.ferry`. Handlers run in the
 * test's process either way; only the calls a caller makes cross the wire.
 *
 * What the remote subject leaves out, and why (those cases run on LIBRARY_SUBJECTS, or in the
 * files still on `useStore` and STORES: access, active-count, claim-race, leases, serializers):
 * - the store's records, leases, claims, active counts, and how workers claim, prefetch and stop:
 *   internals no caller sees;
 * - `tx` and `owner` launch options: a transaction is the store's, and the daemon sets the owner
 *   from the token, so tenancy between owners is the library's (the daemon's own tests cover users);
 * - payloads and results beyond JSON (Dates, Maps, class instances, `registerEncoder` types): the
 *   wire carries JSON values (docs/client.md);
 * - `status(…, { owner })`, `list({ owner })` and queue options (`groupRate`, …): given by the
 *   process that opens the store, not by a caller.
 */
import { Writable } from "node:stream";
import { afterEach, beforeEach } from "vitest";
import { openConnection } from "../../src/client/connection.js";
import { FerryClient } from "../../src/client/ferry-client.js";
import { resolveConnectOptions } from "../../src/client/options.js";
import { loadConfig } from "../../src/daemon/config.js";
import { serveDaemon } from "../../src/daemon/daemon.js";
import { daemonLogger } from "../../src/daemon/log.js";
import type { Ferry, FerryCaller, OpenOptions } from "../../src/index.js";
import type { StoreUnderTest, Subject } from "./stores.js";

export interface Harness {
  ferry: Ferry;
  /** A second Ferry on the same store (another "process" as far as the API can tell). */
  shared: () => Promise<Ferry>;
}

export interface SubjectHarness extends Harness {
  /** The caller's surface under test: `ferry` itself, or a remote client of a daemon over it. */
  api: FerryCaller;
  /** Another caller on the same store, as another process: a second Ferry, or a client of a second daemon over one. */
  otherApi: () => Promise<FerryCaller>;
}

/** Gives each test a fresh store of the kind under test, closed and removed afterwards. */
export function useStore(store: StoreUnderTest, options: Omit<OpenOptions, "store"> = {}): Harness {
  const harness = {} as Harness;
  let cleanup: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    const opened = await store.fresh(options);
    harness.ferry = opened.ferry;
    harness.shared = opened.shared;
    cleanup = opened.cleanup;
  });
  afterEach(async () => {
    await cleanup?.();
  });
  return harness;
}

/** useStore, plus the subject's caller: every call a caller makes goes through `t.api`. */
export function useSubject(subject: Subject): SubjectHarness {
  const harness = useStore(subject.store) as SubjectHarness;
  const servers: (() => Promise<void>)[] = [];
  const callerOver = async (ferry: Ferry): Promise<FerryCaller> => {
    if (subject.via === "library") return ferry;
    const served = await serveOver(ferry);
    servers.push(served.close);
    return served.api;
  };
  beforeEach(async () => {
    harness.api = await callerOver(harness.ferry);
    harness.otherApi = async () => callerOver(await harness.shared());
  });
  // Registered after useStore's: vitest runs afterEach hooks last first, so the servers close
  // before their stores do.
  afterEach(async () => {
    for (const close of servers.splice(0).reverse()) await close();
  });
  return harness;
}

/**
 * The daemon's defaults, on a free loopback port with authentication off (every call is the local
 * admin), and limits far above what a test sends, so no case is throttled. No FERRY_* environment
 * is read.
 */
const REMOTE_CONFIG = loadConfig({
  overrides: {
    server: { port: 0, auth_enabled: false },
    plugins: { enabled: false },
    limits: {
      launches_per_minute: 1_000_000,
      max_active_per_user: 10_000_000,
      max_calls_in_flight_per_user: 1_000_000,
      max_watches_per_user: 1_000_000,
    },
  },
});

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
const SILENT = daemonLogger(discard);

async function serveOver(ferry: Ferry): Promise<{ api: FerryCaller; close: () => Promise<void> }> {
  const daemon = await serveDaemon(REMOTE_CONFIG, SILENT, {
    ferry,
    plugins: { handlers: {}, list: () => [], close: async () => undefined },
    access: undefined,
    // The store and its workers are the test's: closed with it.
    close: async () => undefined,
  });
  // As connect() makes it, from these options alone: no FERRY_TOKEN or FERRY_SERVER leaks in.
  const options = resolveConnectOptions(
    { server: daemon.server.url, transport: "grpc", resumeFor: "5s" },
    {},
  );
  return {
    api: new FerryClient(await openConnection(options), options.resumeForMs),
    close: () => daemon.close("0s"),
  };
}
