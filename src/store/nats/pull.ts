/**
 * Work messages taken from a durable pull consumer *without waiting*: a claim must answer at once
 * with what is there (the client's fetch waits at least a second for a full batch, and a request
 * with `expires` waits that long when the consumer is empty). The request is JetStream's own pull
 * API with `no_wait`; acks use its reply-subject protocol, which is what the client's JsMsg does too.
 */

import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { decodeJob } from "./job-codec.js";
import type { Versioned } from "./job-repo.js";
import type { JsRequests } from "./js-requests.js";

/** One delivered dispatch of a job, held until acked, nak'ed or terminated. */
export interface WorkMessage {
  readonly jobId: string;
  /** The KV revision of the job record the dispatch was published against. */
  readonly revision: number;
  /** 1 on the first delivery. */
  readonly deliveries: number;
  readonly streamSequence: number;
  /** The job record it was published with, at `revision`; undefined if it carries none. */
  snapshot(): Versioned | undefined;
  /** The durable consumer it was delivered through. */
  readonly consumer: string;
  /** Confirmed ack: resolves once the server has the ack (the double ack). */
  ackAck(): Promise<void>;
  /** Keep the message: restarts its AckWait. */
  working(): void;
  /** Deliver again after delayMs (never 0: an instant redelivery loops). */
  nak(delayMs: number): void;
  /** Remove it from the stream without redelivery. */
  term(): void;
}

export const JOB_HEADER = "Ferry-Job";
export const REVISION_HEADER = "Ferry-Rev";

/**
 * How long the server holds a request that finds nothing. Not `no_wait`: on 2.9 a `no_wait`
 * request that races others for the last message can stay open on the server for good and swallow
 * a later message. An empty consumer costs this wait, so the store pulls only subjects that hold
 * messages (see claim.ts).
 */
const EXPIRES_NS = 1_000_000;
/**
 * A request that got neither its batch nor a status by then ends with what it has. 2.9 now and
 * then leaves a request unanswered past its expiry; what reaches it later is a stray (below).
 */
const REQUEST_TIMEOUT_MS = 15;
/**
 * A request that has had messages ends once none came for this long. 2.9 sends no status for a
 * request that expired part-filled (measured: 19 of 219 pulls in a 10k-job drain, ~15 messages
 * each, each then waiting the whole REQUEST_TIMEOUT_MS); the messages of one batch come together.
 */
const QUIET_MS = 5;
/**
 * A message that reaches a request already over (a stray) waits here for the next pull of its
 * consumer, and goes back to the stream (nak) only if none comes within this. Not nak'ed at once:
 * on 2.9 a nak'ed message is redelivered only to a pull that is waiting when its delay ends, else
 * it sits out the whole AckWait (seen: a drain stuck 30 s on one message, ack-pending, after the
 * stray nak).
 */
const STRAY_HOLD_MS = 200;
/** How a stray held too long goes back: redelivered at once. */
const STRAY_NAK_MS = 1;

interface Request {
  readonly consumer: string;
  readonly want: number;
  readonly taken: WorkMessage[];
  readonly done: () => void;
  /** A message came: the request now ends after QUIET_MS without another. */
  readonly arrived: () => void;
}

/**
 * Pulls through one long-lived wildcard subscription. Status answers (404 no messages, 408, 409)
 * arrive on the request's own subject `<inbox>.<id>`; messages arrive under their stream subject,
 * so they go to the oldest open request of their consumer (named in the ack subject). A message
 * that arrives after its request ended (our timeout) finds no open request and is handed straight
 * back (nak), never held unseen until AckWait.
 */
export class Puller {
  readonly #inbox = createInbox();
  readonly #requests = new Map<string, Request>();
  /** Strays per consumer, oldest first, waiting for that consumer's next pull. */
  readonly #strays = new Map<string, WorkMessage[]>();
  readonly #sub: Subscription;
  #next = 0;
  /** Requests ended by our timer, and messages that arrived after their request: for diagnosis. */
  timeouts = 0;
  strays = 0;

  /** `onStray`: a message came after its request ended and waits for its consumer's next pull. */
  constructor(
    private readonly nc: NatsConnection,
    private readonly requests: JsRequests,
    private readonly onStray: (consumer: string) => void = () => {},
  ) {
    this.#sub = nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (err === null) this.onMessage(msg);
      },
    });
  }

  /**
   * Takes up to `batch` messages now. Empty and `answered`: nothing is waiting on this consumer.
   * Not `answered`: the server did not say (see REQUEST_TIMEOUT_MS); asking again is worth it.
   */
  pull(
    stream: string,
    consumer: string,
    batch: number,
  ): Promise<{ messages: WorkMessage[]; answered: boolean }> {
    const id = String(this.#next++);
    const held = this.takeStrays(consumer, batch);
    if (held.length >= batch) return Promise.resolve({ messages: held, answered: true });
    return new Promise((resolve) => {
      const taken: WorkMessage[] = held;
      let answered = true;
      const done = () => {
        clearTimeout(timer);
        this.#requests.delete(id);
        resolve({ messages: taken, answered });
      };
      let timer = setTimeout(() => {
        this.timeouts++;
        answered = false;
        done();
      }, REQUEST_TIMEOUT_MS);
      const arrived = () => {
        clearTimeout(timer);
        timer = setTimeout(done, QUIET_MS);
      };
      this.#requests.set(id, { consumer, want: batch, taken, done, arrived });
      this.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
        JSON.stringify({ batch: batch - held.length, expires: EXPIRES_NS }),
        { reply: `${this.#inbox}.${id}` },
      );
    });
  }

  close(): void {
    this.#sub.unsubscribe();
    for (const request of [...this.#requests.values()]) request.done();
    for (const consumer of [...this.#strays.keys()])
      for (const work of this.takeStrays(consumer)) work.nak(STRAY_NAK_MS);
  }

  private takeStrays(consumer: string, most = Number.POSITIVE_INFINITY): WorkMessage[] {
    const waiting = this.#strays.get(consumer);
    if (waiting === undefined) return [];
    const taken = waiting.splice(0, most);
    if (waiting.length === 0) this.#strays.delete(consumer);
    return taken;
  }

  /** Keeps a stray for the next pull of its consumer; hands it back to the stream if none comes. */
  private holdStray(work: WorkMessage): void {
    const waiting = this.#strays.get(work.consumer);
    if (waiting === undefined) this.#strays.set(work.consumer, [work]);
    else waiting.push(work);
    setTimeout(() => {
      const still = this.#strays.get(work.consumer);
      const at = still?.indexOf(work) ?? -1;
      if (at < 0) return;
      still!.splice(at, 1);
      if (still!.length === 0) this.#strays.delete(work.consumer);
      work.nak(STRAY_NAK_MS);
    }, STRAY_HOLD_MS).unref();
  }

  private onMessage(msg: Msg): void {
    if (msg.headers?.hasError || msg.headers?.code) {
      this.#requests.get(msg.subject.slice(this.#inbox.length + 1))?.done();
      return;
    }
    const work = toWorkMessage(this.nc, this.requests, msg);
    if (work === undefined) return;
    let request: Request | undefined;
    // Maps keep insertion order: the first match is the oldest open request of this consumer.
    for (const open of this.#requests.values()) {
      if (open.consumer === work.consumer) {
        request = open;
        break;
      }
    }
    if (request === undefined) {
      this.strays++;
      this.holdStray(work);
      this.onStray(work.consumer);
      return;
    }
    request.taken.push(work);
    if (request.taken.length >= request.want) request.done();
    else request.arrived();
  }
}

/**
 * The ack subject carries the delivery count and stream sequence:
 * v1 `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, v2 adds a domain and
 * an account hash after `$JS.ACK` (and may append a token).
 */
function toWorkMessage(nc: NatsConnection, requests: JsRequests, msg: Msg): WorkMessage | undefined {
  const reply = msg.reply;
  const jobId = msg.headers?.get(JOB_HEADER);
  if (!reply || !jobId) return undefined;
  return new Delivery(nc, requests, msg, reply, jobId);
}

/** A class, not an object of closures: one per delivered message, made in the hottest loop. */
class Delivery implements WorkMessage {
  readonly revision: number;
  readonly deliveries: number;
  readonly streamSequence: number;
  readonly consumer: string;
  #done = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly requests: JsRequests,
    private readonly msg: Msg,
    private readonly reply: string,
    readonly jobId: string,
  ) {
    const tokens = reply.split(".").slice(2);
    const at = tokens.length === 7 ? 2 : 4;
    this.consumer = tokens[at - 1] ?? "";
    this.deliveries = Number(tokens[at]);
    this.streamSequence = Number(tokens[at + 1]);
    this.revision = Number(msg.headers?.get(REVISION_HEADER) ?? 0);
  }

  snapshot(): Versioned | undefined {
    if (this.revision <= 0 || this.msg.data.byteLength === 0) return undefined;
    try {
      return { job: decodeJob(this.msg.data), revision: this.revision };
    } catch {
      return undefined;
    }
  }

  async ackAck(): Promise<void> {
    if (this.once()) await this.requests.ackAck(this.reply);
  }

  working(): void {
    if (!this.#done) this.nc.publish(this.reply, "+WPI");
  }

  nak(delayMs: number): void {
    if (this.once())
      this.nc.publish(this.reply, `-NAK {"delay":${Math.max(1, Math.round(delayMs)) * 1_000_000}}`);
  }

  term(): void {
    if (this.once()) this.nc.publish(this.reply, "+TERM");
  }

  /** The first settling call wins; later ones do nothing. */
  private once(): boolean {
    if (this.#done) return false;
    this.#done = true;
    return true;
  }
}
