/**
 * The store's hot JetStream requests (a publish or KV write waiting for its PubAck, a confirmed
 * ack) through one reply subscription. The client's `request()` builds an `Error` with a stack for
 * every request it completes (its `cancel()` runs after the answer) and a timer per request: 7 % and
 * 3 % of the client's CPU in a drain. Here a request is an entry in a map, and one sweep ends those
 * the server left unanswered.
 */
import type { KV } from "@nats-io/kv";
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { ErrorCode, FerryError } from "../../core/errors.js";

/** JetStream's "wrong last sequence": the compare-and-set lost. Shaped as `isRevisionConflict` reads it. */
export class RevisionConflict extends Error {
  readonly code = 10071;
}

const DEFAULT_TIMEOUT_MS = 5_000;
/** How often unanswered requests are looked at: a timeout ends within this of its deadline. */
const SWEEP_MS = 250;
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const ACK = new TextEncoder().encode("+ACK");

interface Pending {
  readonly resolve: (msg: Msg) => void;
  readonly reject: (error: Error) => void;
  readonly deadline: number;
  /** What it was sent to, for the error if it goes unanswered. */
  readonly subject: string;
}

export class JsRequests {
  readonly #inbox = createInbox();
  readonly #pending = new Map<string, Pending>();
  readonly #sub: Subscription;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #next = 0;

  constructor(private readonly nc: NatsConnection) {
    this.#sub = nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (err !== null) return;
        const token = msg.subject.slice(this.#inbox.length + 1);
        const pending = this.#pending.get(token);
        if (pending === undefined) return;
        this.#pending.delete(token);
        pending.resolve(msg);
      },
    });
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  /**
   * Publishes into a stream and answers the stored sequence (a KV write's revision).
   * `expectLastSubjectSequence` makes it a compare-and-set: 0 = the subject must hold nothing.
   */
  async publish(
    subject: string,
    data: Uint8Array,
    options: {
      readonly expectLastSubjectSequence?: number;
      readonly msgID?: string;
      readonly headers?: Readonly<Record<string, string>>;
    } = {},
  ): Promise<number> {
    let text = "NATS/1.0\r\n";
    for (const [key, value] of Object.entries(options.headers ?? {})) text += `${key}: ${value}\r\n`;
    if (options.msgID !== undefined) text += `Nats-Msg-Id: ${options.msgID}\r\n`;
    if (options.expectLastSubjectSequence !== undefined)
      text += `Nats-Expected-Last-Subject-Sequence: ${options.expectLastSubjectSequence}\r\n`;
    const answer = await this.request(subject, data, wireHeaders(`${text}\r\n`), subject);
    return sequenceOf(answer, subject);
  }

  /**
   * The bucket with its `put` (and so `update`, which calls it) sent through these requests: the
   * store's frequent small writes (held lists, counters, expiry notes, index keys, group slots).
   * Everything else is the client's own. Keys are the store's, already valid.
   */
  withLightPuts(kv: KV, bucket: string): KV {
    // `update` calls `put` with `previousSeq`: kept, so it stays a compare-and-set.
    const put = async (
      key: string,
      data: string | Uint8Array,
      options: { readonly previousSeq?: number } = {},
    ): Promise<number> =>
      this.publish(
        `$KV.${bucket}.${key}`,
        typeof data === "string" ? encoder.encode(data) : data,
        options.previousSeq === undefined ? {} : { expectLastSubjectSequence: options.previousSeq },
      );
    return new Proxy(kv, {
      get: (target, key, receiver) => (key === "put" ? put : Reflect.get(target, key, receiver)),
    });
  }

  /** A confirmed ack of a delivered message (its reply subject): resolves once the server has it. */
  async ackAck(ackSubject: string): Promise<void> {
    const answer = await this.request(ackSubject, ACK, undefined, "an ack");
    if (answer.headers?.hasError) throw unavailable(`ack: ${answer.headers.description}`);
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#sub.unsubscribe();
    for (const pending of this.#pending.values())
      pending.reject(unavailable(`${pending.subject}: connection closed`));
    this.#pending.clear();
  }

  private request(subject: string, data: Uint8Array, h: MsgHdrs | undefined, what: string): Promise<Msg> {
    if (this.nc.isClosed()) return Promise.reject(unavailable(`${what}: connection closed`));
    const token = String(this.#next++);
    return new Promise<Msg>((resolve, reject) => {
      this.#pending.set(token, { resolve, reject, deadline: Date.now() + DEFAULT_TIMEOUT_MS, subject: what });
      try {
        const reply = `${this.#inbox}.${token}`;
        this.nc.publish(subject, data, h === undefined ? { reply } : { reply, headers: h });
      } catch (error) {
        this.#pending.delete(token);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(token);
      pending.reject(unavailable(`no answer from ${pending.subject} within ${DEFAULT_TIMEOUT_MS} ms`));
    }
  }
}

/**
 * Headers as the client's `publish` uses them, which is only `encode()`: the bytes made at once
 * from text, not a header map built up and encoded (two per job in a drain). Values are the
 * store's own (ids, numbers), never containing CR or LF.
 */
function wireHeaders(text: string): MsgHdrs {
  const bytes = encoder.encode(text);
  return { encode: () => bytes } as unknown as MsgHdrs;
}

/** A PubAck's sequence; a status (no responders) or an API error thrown. */
function sequenceOf(msg: Msg, subject: string): number {
  if (msg.headers?.hasError || msg.data.byteLength === 0) {
    throw unavailable(
      `JetStream answered ${msg.headers?.code ?? "nothing"} ${msg.headers?.description ?? ""} to ${subject}`.trim(),
    );
  }
  const body = JSON.parse(decoder.decode(msg.data)) as {
    seq?: unknown;
    error?: { code?: number; err_code?: number; description?: string };
  };
  if (body.error !== undefined) {
    const description = body.error.description ?? "JetStream error";
    if (body.error.err_code === 10071) throw new RevisionConflict(description);
    throw unavailable(`JetStream: ${description} (${body.error.err_code ?? body.error.code})`);
  }
  if (typeof body.seq !== "number") throw unavailable(`publish to ${subject}: no sequence in the answer`);
  return body.seq;
}

const unavailable = (reason: string): FerryError =>
  new FerryError(ErrorCode.StoreUnavailable, `NATS did not complete the call (${reason})`);
