/**
 * Work messages taken from a durable pull consumer *without waiting*: a claim must answer at once
 * with what is there (the client's fetch waits at least a second for a full batch). The request is
 * JetStream's own pull API with `no_wait`; acks use its reply-subject protocol, which is what the
 * client's JsMsg does too.
 */
import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";

/** One delivered dispatch of a job, held until acked, nak'ed or terminated. */
export interface WorkMessage {
  readonly jobId: string;
  /** The KV revision of the job record the dispatch was published against. */
  readonly revision: number;
  /** 1 on the first delivery. */
  readonly deliveries: number;
  readonly streamSequence: number;
  /** Confirmed ack: resolves once the server has the ack (the double ack). */
  ackAck(timeoutMs?: number): Promise<void>;
  /** Keep the message: restarts its AckWait. */
  working(): void;
  /** Deliver again after delayMs (never 0: an instant redelivery loops). */
  nak(delayMs: number): void;
  /** Remove it from the stream without redelivery. */
  term(): void;
}

export const JOB_HEADER = "Ferry-Job";
export const REVISION_HEADER = "Ferry-Rev";

const encoder = new TextEncoder();

/**
 * Takes up to `batch` messages now; an empty answer means nothing is waiting on this consumer.
 *
 * On 2.9 a `no_wait` request that races another one for the last message can be left waiting
 * without an answer, so each request also `expires` after `waitMs` and ends quietly then.
 */
export function pullNow(
  nc: NatsConnection,
  stream: string,
  consumer: string,
  batch: number,
  waitMs = 20,
): Promise<WorkMessage[]> {
  return new Promise((resolve, reject) => {
    const taken: WorkMessage[] = [];
    const inbox = createInbox();
    const finish = (error?: Error) => {
      clearTimeout(timer);
      sub.unsubscribe();
      if (error !== undefined && taken.length === 0) reject(error);
      else resolve(taken);
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err !== null) return finish(err);
        // A status message (404 no messages, 408 expired, 409 …) ends the request.
        if (msg.headers?.hasError || msg.headers?.code) return finish();
        const work = toWorkMessage(nc, msg);
        if (work !== undefined) taken.push(work);
        if (taken.length >= batch) finish();
      },
    });
    // A little after the server's own expiry: its 408 normally ends the request first.
    const timer = setTimeout(() => finish(), waitMs + 100);
    const request = { batch, no_wait: true, expires: waitMs * 1_000_000 };
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(request), { reply: inbox });
  });
}

/**
 * The ack subject carries the delivery count and stream sequence:
 * v1 `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, v2 adds a domain and
 * an account hash after `$JS.ACK` (and may append a token).
 */
function toWorkMessage(nc: NatsConnection, msg: Msg): WorkMessage | undefined {
  const reply = msg.reply;
  const jobId = msg.headers?.get(JOB_HEADER);
  if (!reply || !jobId) return undefined;
  const tokens = reply.split(".").slice(2);
  const at = tokens.length === 7 ? 2 : 4;
  const deliveries = Number(tokens[at]);
  const streamSequence = Number(tokens[at + 1]);
  let done = false;
  const once = (): boolean => {
    if (done) return false;
    done = true;
    return true;
  };
  return {
    jobId,
    revision: Number(msg.headers?.get(REVISION_HEADER) ?? 0),
    deliveries,
    streamSequence,
    ackAck: async (timeoutMs = 5_000) => {
      if (!once()) return;
      await nc.request(reply, encoder.encode("+ACK"), { timeout: timeoutMs });
    },
    working: () => {
      if (!done) nc.publish(reply, "+WPI");
    },
    nak: (delayMs) => {
      if (once()) nc.publish(reply, `-NAK ${JSON.stringify({ delay: Math.max(1, delayMs) * 1_000_000 })}`);
    },
    term: () => {
      if (once()) nc.publish(reply, "+TERM");
    },
  };
}
