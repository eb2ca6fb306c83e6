import { LeaseThread } from "../lease-thread.js";
import type { NatsKeeperData } from "./lease-keeper-thread.js";
import type { NatsStoreConfig } from "./store-url.js";

/**
 * A thread with its own NATS connection (lease-keeper-thread.ts) that keeps a heartbeating
 * worker's leases alive while the event loop is stalled (a synchronous handler starves the
 * heartbeat timer, and the job would be rescued and run twice). Same protocol and rules as the
 * PostgreSQL keeper (postgres/lease-keeper.ts): it renews only when a heartbeat is clearly late,
 * and for at most `until`.
 *
 * It writes only while the event loop is really stalled (the main thread's beat in shared memory is
 * old), not when a heartbeat is merely late on a busy machine: on nats-server before 2.11 a
 * replicated KV can accept two compare-and-sets at one revision (nats-server #6194), so a renewal
 * racing the main thread's finish could re-open a completed job. A stalled loop sends nothing.
 */
export class NatsLeaseKeeper extends LeaseThread {
  constructor(config: NatsStoreConfig, jobsBucket: string) {
    const data: Omit<NatsKeeperData, "loopBeat"> = { config, bucket: jobsBucket, tickMs: 200 };
    super(new URL("./lease-keeper-thread.js", import.meta.url), data, { loopBeatMs: 50 });
  }
}
