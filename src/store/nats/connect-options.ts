/**
 * The client options every NATS connection of a store is opened with, from the parsed store URL:
 * its servers, its credentials and its TLS files. The store's connection (connection.ts) and the
 * lease keeper's thread (lease-keeper-thread.ts) both start from these, each adding its own name,
 * timeouts and reconnect rules. A file that cannot be used is FERRY_STORE_UNAVAILABLE with a
 * message that names the cause and never a secret.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import {
  type Authenticator,
  type ConnectionOptions,
  credsAuthenticator,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import { ErrorCode, FerryError } from "../../core/errors.js";
import type { NatsAuth, NatsStoreConfig, NatsTls } from "./store-url.js";

export interface NatsConnectOptions {
  /** Servers, credentials and TLS. */
  readonly options: ConnectionOptions;
  /** Texts that must not appear in any message (scrubbed from the client's errors too). */
  readonly secrets: readonly string[];
}

/** The options to connect to the store's servers with its credentials and TLS files. */
export async function natsConnectOptions(config: NatsStoreConfig): Promise<NatsConnectOptions> {
  const login = await loginOptions(config.auth);
  return {
    options: {
      servers: [...config.servers],
      ...login.options,
      ...(config.tls === undefined ? {} : { tls: tlsOptions(config.tls) }),
    },
    secrets: login.secrets,
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

export function unavailable(message: string, cause?: unknown): FerryError {
  return new FerryError(ErrorCode.StoreUnavailable, message, cause === undefined ? undefined : { cause });
}
