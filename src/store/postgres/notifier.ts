import pg from "pg";
import type { StoreEvent } from "../store.js";
import type { Client } from "./connection.js";

/**
 * Store events over LISTEN/NOTIFY. Notifications are sent inside the transaction that made the
 * change, so they are delivered only if it commits, and reach every process listening on the
 * schema's channel. The sending store tells its own subscribers right after its commit (no round
 * trip through the server) and its listener skips its own notifications.
 *
 * Wire format (small, since a payload is capped at 8000 bytes): `{"e":[queues]}`,
 * `{"c":[ids]}`, `{"x":[[id, graceMs]]}`, each with an optional `"o"`: the sending store, whose
 * own listener skips it. Anything else on the channel is ignored.
 */
const MAX_PAYLOAD = 7_000;

export const channelOf = (schema: string): string => `${schema}_events`;

/** Collects the events of one transaction and sends them just before it commits. */
export class Outbox {
  readonly queues = new Set<string>();
  readonly changed: string[] = [];
  readonly cancels: [string, number][] = [];

  /** A retried transaction starts over. */
  clear(): void {
    this.queues.clear();
    this.changed.length = 0;
    this.cancels.length = 0;
  }

  get empty(): boolean {
    return this.queues.size === 0 && this.changed.length === 0 && this.cancels.length === 0;
  }

  /**
   * `origin`: the sending store's id, when that store tells its own subscribers itself (see
   * `events`); its listener then skips these. Without it, every listener delivers them.
   */
  async send(client: Client, channel: string, origin?: string): Promise<void> {
    if (this.empty) return;
    const o = origin === undefined ? {} : { o: origin };
    const payloads: string[] = [];
    if (this.queues.size > 0) payloads.push(JSON.stringify({ ...o, e: [...this.queues] }));
    for (const chunk of chunks(this.changed)) payloads.push(JSON.stringify({ ...o, c: chunk }));
    for (const chunk of chunks(this.cancels)) payloads.push(JSON.stringify({ ...o, x: chunk }));
    await client.query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", [channel, payloads]);
  }

  /** The same events, for this process's own subscribers. */
  events(): StoreEvent[] {
    const events: StoreEvent[] = [];
    for (const id of this.changed) events.push({ type: "changed", id });
    for (const queue of this.queues) events.push({ type: "enqueued", queue });
    for (const [id, graceMs] of this.cancels) events.push({ type: "cancel", id, graceMs });
    return events;
  }
}

/** Splits a list so each chunk's JSON stays under the payload cap (ids are ~40 bytes each). */
function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += MAX_PAYLOAD / 50) out.push(items.slice(i, i + MAX_PAYLOAD / 50));
  return out;
}

function decode(payload: string | undefined, self: string): StoreEvent[] {
  if (payload === undefined || payload.length > 8_000) return [];
  let message: unknown;
  try {
    message = JSON.parse(payload);
  } catch {
    return [];
  }
  const m = message as { o?: unknown; e?: unknown; c?: unknown; x?: unknown };
  // Sent by this very store, which already told its subscribers.
  if (m.o === self) return [];
  const events: StoreEvent[] = [];
  if (Array.isArray(m.e))
    for (const queue of m.e) if (typeof queue === "string") events.push({ type: "enqueued", queue });
  if (Array.isArray(m.c))
    for (const id of m.c) if (typeof id === "string") events.push({ type: "changed", id });
  if (Array.isArray(m.x))
    for (const entry of m.x) {
      if (Array.isArray(entry) && typeof entry[0] === "string" && typeof entry[1] === "number")
        events.push({ type: "cancel", id: entry[0], graceMs: entry[1] });
    }
  return events;
}

export interface ListenerOptions {
  /** How often the listening connection is checked; a dead one is replaced. Default 5 s. */
  readonly pingMs?: number;
  /** Longest wait between reconnection attempts. Default 5 s. */
  readonly maxBackoffMs?: number;
}

/**
 * One dedicated connection that LISTENs on the channel. It reconnects with capped exponential
 * back-off when the server restarts or the connection is killed, and pings so a half-open
 * connection (the peer vanished without closing) is noticed within ~2 ping intervals. While it is
 * down events are missed; callers poll as well, so a missed event only delays them.
 */
export class Listener {
  #client: pg.Client | undefined;
  #closed = false;
  #backoffMs = 100;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #pingTimer: NodeJS.Timeout;
  /** Times the connection was (re)established: tests and operators can see reconnects. */
  connects = 0;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly deliver: (event: StoreEvent) => void,
    private readonly origin: string,
    private readonly options: ListenerOptions = {},
  ) {
    this.#pingTimer = setInterval(() => void this.ping(), options.pingMs ?? 5_000);
    this.#pingTimer.unref();
  }

  /** Resolves once listening (or once the first attempt failed: reconnection goes on). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ ...this.config, query_timeout: this.options.pingMs ?? 5_000 });
    client.on("error", () => this.drop(client));
    client.on("end", () => this.drop(client));
    client.on("notification", (message) => {
      if (message.channel !== this.channel) return;
      for (const event of decode(message.payload, this.origin)) this.deliver(event);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch {
      this.drop(client);
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#backoffMs = 100;
    this.connects += 1;
  }

  private drop(client: pg.Client): void {
    if (this.#client === client) this.#client = undefined;
    // end() on a broken socket can hang; destroy the stream so nothing lingers.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    if (this.#closed || this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.connect();
    }, this.#backoffMs);
    this.#retryTimer.unref();
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.options.maxBackoffMs ?? 5_000);
  }

  private async ping(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    try {
      await client.query("SELECT 1");
    } catch {
      this.drop(client);
    }
  }

  get listening(): boolean {
    return this.#client !== undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) {
      await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000))]);
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    }
  }
}
