/**
 * What the NATS drivers share: the server URL, a fail-fast probe, a connection helper, unique
 * names and deleting what a driver left on the server.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { errorText } from "./time.js";

/** The local server, no auth; BENCH_NATS_URL points elsewhere (nats://user:pass@host:port, nats://token@…). */
export const NATS_URL = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
const CONNECT_TIMEOUT_MS = 2000;

/** The URL without its password or token, for messages and notes. */
export function natsLabel(url = NATS_URL): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    else if (parsed.username) parsed.username = "***"; // a lone user part is a token
    return parsed.href;
  } catch {
    return "(unparsable BENCH_NATS_URL)";
  }
}

/**
 * A connection that gives up after 2 s instead of retrying: a benchmark wants a clear failure, not
 * a client that waits out a server restart (reconnect off). The v3 client ignores credentials in
 * a server URL, so they are taken out of it and passed as options.
 */
export function natsConnect(): Promise<NatsConnection> {
  const url = new URL(NATS_URL);
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  const auth = pass ? { user, pass } : user ? { token: user } : {};
  return connect({
    servers: `${url.protocol}//${url.host}`,
    ...auth,
    timeout: CONNECT_TIMEOUT_MS,
    reconnect: false,
    name: "ferry-bench",
  });
}

/**
 * Rejects with a clear message when the server is down, refuses us or runs without JetStream
 * (createDriver calls this first). Answers the server's version, for notes.
 */
export async function probeNats(): Promise<string> {
  let nc: NatsConnection | undefined;
  try {
    nc = await natsConnect();
    if (!nc.info?.jetstream) throw new Error("the server runs without JetStream (start it with -js)");
    await nc.flush();
    return nc.info.version;
  } catch (err) {
    throw new Error(`NATS ${natsLabel()}: cannot use it (BENCH_NATS_URL to change): ${errorText(err)}`);
  } finally {
    await nc?.close().catch(() => {});
  }
}

let counter = 0;

/**
 * A fresh token: lower-case letters, digits and _ only, so it is valid in stream, consumer, KV bucket
 * and subject names alike (no '.', '*', '>', '-' or spaces); unique per process and call.
 */
export function uniqueToken(): string {
  return `${process.pid}_${Date.now().toString(36)}_${++counter}`;
}

/**
 * Deletes every stream whose name contains `fragment`, through a connection of its own (a driver's
 * may already be closed). KV buckets and object stores are streams too (KV_<bucket>, OBJ_<bucket>),
 * so this removes them as well; a stream's consumers go with it.
 */
export async function deleteStreamsContaining(fragment: string): Promise<void> {
  if (!fragment) return;
  const nc = await natsConnect();
  try {
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.includes(fragment)) names.push(name);
    for (const name of names) await jsm.streams.delete(name);
  } finally {
    await nc.close().catch(() => {});
  }
}
