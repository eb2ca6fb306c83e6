/**
 * Opens the NATS connection a store runs on: credentials and TLS from the parsed store URL,
 * reconnecting forever once connected, and a server that must have JetStream. Every failure to
 * connect is FERRY_STORE_UNAVAILABLE with a message that names the cause and never a secret.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  type Authenticator,
  AuthorizationError,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import { ErrorCode, FerryError } from "../../core/errors.js";
import type { NatsAuth, NatsStoreConfig, NatsTls } from "./store-url.js";

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
  const login = await loginOptions(config.auth);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...config.servers],
      name: config.name ?? "ferry",
      timeout: timeoutMs,
      ...login.options,
      ...(config.tls === undefined ? {} : { tls: tlsOptions(config.tls) }),
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

function tlsOptions(tls: NatsTls): NonNullable<ConnectionOptions["tls"]> {
  // Without caFile, Node's own trust store checks the server's certificate.
  return {
    ...(tls.caFile === undefined ? {} : { caFile: tls.caFile }),
    ...(tls.certFile === undefined ? {} : { certFile: tls.certFile }),
    ...(tls.keyFile === undefined ? {} : { keyFile: tls.keyFile }),
  };
}

interface Login {
  readonly options: Partial<ConnectionOptions>;
  /** Texts that must not appear in any message (scrubbed from the client's errors too). */
  readonly secrets: readonly string[];
}

/** Credentials as client options: the v3 client ignores them inside server URLs. */
async function loginOptions(auth: NatsAuth): Promise<Login> {
  switch (auth.kind) {
    case "none":
      return { options: {}, secrets: [] };
    case "userpass":
      return { options: { user: auth.user, pass: auth.pass }, secrets: [auth.pass] };
    case "token":
      return { options: { token: auth.token }, secrets: [auth.token] };
    case "creds": {
      const text = await readSecretFile(auth.file, "creds file (?creds=)");
      const authenticator = credsAuthenticator(rereading(auth.file, text));
      checkAuthenticator(authenticator, `${auth.file} is not a NATS creds file (?creds=)`);
      return { options: { authenticator }, secrets: secretLines(text) };
    }
    case "nkey": {
      const text = await readSecretFile(auth.seedFile, "nkey seed file (?nkey=)");
      const seedOf = (contents: string) => NKEY_SEED.exec(contents)?.[0] ?? "";
      if (seedOf(text) === "")
        throw unavailable(`${auth.seedFile} holds no nkey seed (a line starting with SU…)`);
      const read = rereading(auth.seedFile, text);
      const authenticator = nkeyAuthenticator(() =>
        new TextEncoder().encode(seedOf(new TextDecoder().decode(read()))),
      );
      checkAuthenticator(authenticator, `the seed in ${auth.seedFile} is not a valid nkey seed (?nkey=)`);
      return { options: { authenticator }, secrets: secretLines(text) };
    }
  }
}

const NKEY_SEED = /S[A-Z][A-Z2-7]{56}/;

async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw unavailable(
      `cannot read the NATS ${what} ${path}${typeof code === "string" ? ` (${code})` : ""}`,
      error,
    );
  }
}

/**
 * The file's contents at each (re)connect, so a rotated creds or seed file is picked up, as the
 * Go client does; a file that cannot be read right then falls back to the last good contents.
 */
function rereading(path: string, initial: string): () => Uint8Array {
  let last = new TextEncoder().encode(initial);
  return () => {
    try {
      last = readFileSync(path);
    } catch {
      // Keep the last good contents: a rotation in progress must not drop the connection.
    }
    return last;
  };
}

/** Signs a dummy nonce once, so a malformed file fails here rather than as a vague connect error. */
function checkAuthenticator(authenticator: Authenticator, message: string): void {
  try {
    authenticator("ferry-check");
  } catch (error) {
    throw unavailable(message, error);
  }
}

const secretLines = (text: string): string[] =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith("-") && !line.startsWith("*"));

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

function unavailable(message: string, cause?: unknown): FerryError {
  return new FerryError(ErrorCode.StoreUnavailable, message, cause === undefined ? undefined : { cause });
}
