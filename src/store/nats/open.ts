/**
 * Opens the NATS store: parse the URL, connect, make sure the work stream and the KV buckets exist
 * (idempotent, safe when several processes start at once), and hand the store what it uses.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { connectNats } from "./connection.js";
import type { NatsResources } from "./context.js";
import { JsRequests } from "./js-requests.js";
import { NatsLeaseKeeper } from "./lease-keeper.js";
import { natsNames } from "./names.js";
import { NatsStore } from "./nats-store.js";
import { ensureKv, ensureStream } from "./provision.js";
import { JOB_HEADER } from "./pull.js";
import { parseNatsStoreUrl } from "./store-url.js";
import { withStoreErrors } from "./unavailable.js";

/**
 * How long a delivered dispatch stays with its worker without `working()`. Short, because 2.9 now
 * and then counts a message as delivered that no client received (a job stuck `queued` with its
 * message ack-pending, about one drain in five under load): it comes back after this. The store
 * keeps the dispatches of jobs it runs alive with `working()` (keepDispatchesAlive, leases.ts).
 */
const ACK_WAIT_MS = 5_000;
/** A backstop only: attempts are counted in the job record, and every nak (a job not due yet, a
 * full group) counts as a delivery (see docs/stores.md, "poison"). */
const MAX_DELIVER = 10_000;
/** Publish retries within this window are dropped by the server (message id = job id + dispatch). */
const DUPLICATE_WINDOW_MS = 120_000;

/** Consumer settings; tests shorten them to cause redeliveries and MaxDeliver quickly. */
export interface NatsConsumerSettings {
  readonly ackWaitMs?: number;
  readonly maxDeliver?: number;
}

export async function openNatsStore(url: string, settings: NatsConsumerSettings = {}): Promise<NatsStore> {
  const config = parseNatsStoreUrl(url);
  const { nc, jsm, kvm } = await connectNats(config);
  try {
    const names = natsNames(config.prefix);
    await ensureStream(jsm, {
      name: names.workStream,
      subjects: [`${config.prefix}.work.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: config.replicas,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
    const bucket = (name: string) =>
      ensureKv(kvm, name, { history: 1, storage: StorageType.File, replicas: config.replicas });
    const [jobs, unique, index, meta] = await Promise.all([
      bucket(names.jobsBucket),
      bucket(names.uniqueBucket),
      bucket(names.indexBucket),
      bucket(names.metaBucket),
    ]);
    const requests = new JsRequests(nc);
    const resources: NatsResources = {
      nc,
      requests,
      jobs,
      unique,
      index: requests.withLightPuts(index, names.indexBucket),
      meta: requests.withLightPuts(meta, names.metaBucket),
      ensureConsumer: async (name, filterSubject) => {
        await jsm.consumers.add(names.workStream, {
          durable_name: name,
          filter_subject: filterSubject,
          ack_policy: AckPolicy.Explicit,
          ack_wait: nanos(settings.ackWaitMs ?? ACK_WAIT_MS),
          max_deliver: settings.maxDeliver ?? MAX_DELIVER,
          max_ack_pending: 100_000,
          deliver_policy: DeliverPolicy.All,
        });
      },
      jobIdAt: async (sequence) => {
        const stored = await jsm.streams.getMessage(names.workStream, { seq: sequence }).catch(() => null);
        return stored?.header.get(JOB_HEADER) || undefined;
      },
      deleteMessage: async (sequence) => {
        await jsm.streams.deleteMessage(names.workStream, sequence).catch(() => false);
      },
      messagesBySubject: async (filter) => {
        const info = await jsm.streams.info(names.workStream, { subjects_filter: filter });
        return info.state.subjects ?? {};
      },
      startLeaseKeeper: () => new NatsLeaseKeeper(config, names.jobsBucket),
      writeJob: (id, record, revision) =>
        requests.publish(`$KV.${names.jobsBucket}.${id}`, record, { expectLastSubjectSequence: revision }),
      publish: async (subject, data, options) => {
        await requests.publish(subject, data, { msgID: options.msgID, headers: options.headers });
      },
      close: async () => {
        await nc.drain().catch(() => nc.close());
        requests.close();
      },
    };
    return withStoreErrors(new NatsStore(resources, config.prefix, settings.ackWaitMs ?? ACK_WAIT_MS));
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
}
