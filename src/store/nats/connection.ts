/**
 * Opens the NATS connection a store runs on: servers, credentials and TLS from the parsed store
 * URL (connect-options.ts), reconnecting forever once connected, and a server that must have
 * JetStream. Every failure to connect is FERRY_STORE_UNAVAILABLE with a message that names the
 * cause and never a secret.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  AuthorizationError,
  connect,
  type NatsConnection,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import type { FerryError } from "../../core/errors.js";
import { natsConnectOptions, unavailable } from "./connect-options.js";
import type { NatsAuth, NatsStoreConfig } from "./store-url.js";

export interface NatsFeatures {
  /** Consumers with several filter subjects (2.10). */
  readonly multiFilter: boolean;
  /** Per-message TTL (`Nats-TTL`) and delete markers (2.11). */
  readonly messageTtl: boolean;
  /** Atomic batch publish (2.12). */
  readonly atomicBatch: boolean;
}

export interface NatsHandles {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly kvm: Kvm;
  /** The version of the server first connected to, e.g. "2.9.10". */
  readonly serverVersion: string;
  readonly features: NatsFeatures;
}

export interface ConnectNatsOptions {
  /** How long the first connection may take, per server. Default 5 s. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;

export async function connectNats(
  config: NatsStoreConfig,
  options: ConnectNatsOptions = {},
): Promise<NatsHandles> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const where = `NATS at ${config.servers.join(",")}`;
  const login = await natsConnectOptions(config);
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...login.options,
      name: config.name ?? "ferry",
      timeout: timeoutMs,
      // The first connect fails fast (each server tried once); once connected, a lost server is
      // waited for forever: a worker outlives a NATS restart or failover.
      maxReconnectAttempts: -1,
      // Two refused logins in a row would otherwise end the connection for good; a server that
      // restarts with rotated credentials (the creds file is re-read) must not stop the store.
      ignoreAuthErrorAbort: true,
      reconnectDelayHandler: reconnectDelay({ quietMs: timeoutMs + 1_000 }),
      // The default (2 min × 2 pings) takes 4 minutes to notice a peer that vanished without a FIN.
      pingInterval: 5_000,
      maxPingOut: 3,
      // An Error (with its stack) per request only to improve a timeout's trace: it cost a sixth of
      // the client's CPU in a drain. Ferry maps these errors to its own anyway.
      noAsyncTraces: true,
    });
  } catch (error) {
    throw connectError(error, where, config, login.secrets, timeoutMs);
  }

  try {
    // nc.info is the server we reached; without -js it has no `jetstream` at all.
    if (nc.info?.jetstream !== true) {
      throw unavailable(
        `NATS at ${nc.getServer()} runs without JetStream (start nats-server with -js): the store needs it`,
      );
    }
    const serverVersion = nc.info.version;
    const jsm = await jetstreamManager(nc).catch((error: unknown) => {
      throw unavailable(
        `JetStream does not answer on NATS at ${nc.getServer()} (is it enabled for this account?)`,
        error,
      );
    });
    const js = jetstream(nc);
    return { nc, js, jsm, kvm: new Kvm(js), serverVersion, features: featuresOf(serverVersion) };
  } catch (error) {
    await nc.close().catch(() => {});
    throw error;
  }
}

/** What a server of this version can do; an unreadable version gets nothing. */
export function featuresOf(version: string): NatsFeatures {
  const atLeast = (minimum: readonly [number, number, number]) => compareVersions(version, minimum) >= 0;
  return {
    multiFilter: atLeast([2, 10, 0]),
    messageTtl: atLeast([2, 11, 0]),
    atomicBatch: atLeast([2, 12, 0]),
  };
}

function compareVersions(version: string, minimum: readonly [number, number, number]): number {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (match === null) return -1;
  for (let i = 0; i < 3; i++) {
    const difference = Number(match[i + 1]) - (minimum[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * The delay before the next reconnect attempt: half of how long the outage has lasted so far,
 * between `minMs` and `maxMs`, plus up to a quarter of it as jitter so that many workers do not
 * hit a restarted server in step. The client asks for a delay at least every `maxMs` (plus one
 * dial) while it is disconnected, so a longer silence means a new outage: the wait starts small.
 */
export function reconnectDelay({
  minMs = 250,
  maxMs = 2_000,
  quietMs = DEFAULT_TIMEOUT_MS,
  now = Date.now,
  random = Math.random,
}: {
  minMs?: number;
  maxMs?: number;
  quietMs?: number;
  now?: () => number;
  random?: () => number;
} = {}): () => number {
  let outageStart = 0;
  let lastAsked = Number.NEGATIVE_INFINITY;
  return () => {
    const time = now();
    if (time - lastAsked > maxMs * 1.25 + quietMs) outageStart = time;
    lastAsked = time;
    const wait = Math.min(maxMs, Math.max(minMs, (time - outageStart) / 2));
    return Math.round(wait * (1 + random() / 4));
  };
}

function connectError(
  error: unknown,
  where: string,
  config: NatsStoreConfig,
  secrets: readonly string[],
  timeoutMs: number,
): FerryError {
  const said = scrub(error instanceof Error ? error.message : String(error), secrets);
  if (error instanceof AuthorizationError || error instanceof UserAuthenticationExpiredError) {
    const expired = error instanceof UserAuthenticationExpiredError ? " (they have expired)" : "";
    return unavailable(`${where} refused ${describeLogin(config.auth)}${expired}: ${said}`, error);
  }
  if (error instanceof TimeoutError) {
    const noClientCert = config.tls !== undefined && config.tls.certFile === undefined;
    const hint = noClientCert
      ? " (a server that requires a client certificate, ?cert= and ?key=, also looks like this)"
      : "";
    return unavailable(`${where} did not answer within ${timeoutMs} ms${hint}`, error);
  }
  if (/does not support 'tls'/.test(said)) {
    return unavailable(`${where} does not offer TLS, but the store URL asks for it`, error);
  }
  const tlsFiles = [config.tls?.caFile, config.tls?.certFile, config.tls?.keyFile];
  if (tlsFiles.some((file) => file !== undefined && said.includes(file))) {
    return unavailable(`cannot use the TLS files for ${where}: ${said}`, error);
  }
  if (isTlsError(error)) {
    const hint =
      config.tls?.caFile === undefined
        ? " (?ca= names the CA file that signed the server's certificate)"
        : "";
    return unavailable(`TLS with ${where} failed: ${said}${hint}`, error);
  }
  return unavailable(`${where} is unreachable: ${said}`, error);
}

function describeLogin(auth: NatsAuth): string {
  switch (auth.kind) {
    case "none":
      return "a connection without credentials (give user:pass@, token@, ?creds= or ?nkey= in the store URL)";
    case "userpass":
      return `the user ${JSON.stringify(auth.user)} with the password in the store URL`;
    case "token":
      return "the token in the store URL";
    case "creds":
      return `the credentials in ${auth.file}`;
    case "nkey":
      return `the nkey seed in ${auth.seedFile}`;
  }
}

/** Certificate problems surface as Node's TLS errors, plain or wrapped by the client. */
function isTlsError(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /CERT|SIGNATURE|ISSUER|TLS|SSL/.test(code)) return true;
    if (/certificate|tls|ssl/i.test(e.message)) return true;
  }
  return false;
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join("***");
  return out;
}
