/**
 * Every name the NATS store puts on the server, derived from one prefix so that several Ferry
 * installations can share a cluster (docs/stores.md, "Names").
 */
import { createHash } from "node:crypto";

/** Priorities become three bands, pulled highest first; FIFO inside a band. */
export const BANDS = ["hi", "mid", "lo"] as const;
export type Band = (typeof BANDS)[number];

export const bandOf = (priority: number): Band => (priority > 0 ? "hi" : priority < 0 ? "lo" : "mid");

export interface NatsNames {
  readonly workStream: string;
  readonly jobsBucket: string;
  readonly uniqueBucket: string;
  readonly indexBucket: string;
  readonly metaBucket: string;
  /** Core NATS subject for events between processes. */
  readonly events: string;
  /** The subject a dispatch of this job goes to. Queue names are one token; handlers are dotted. */
  workSubject(queue: string, band: Band, handler: string): string;
  /** Every work subject of a queue (a filter). */
  queueSubjects(queue: string): string;
  /** Durable consumer of one (queue, band, handler): consumer names may not contain dots. */
  consumer(queue: string, band: Band, handler: string): string;
}

export function natsNames(prefix: string): NatsNames {
  return {
    workStream: `${prefix}_WORK`,
    jobsBucket: `${prefix}_jobs`,
    uniqueBucket: `${prefix}_unique`,
    indexBucket: `${prefix}_index`,
    metaBucket: `${prefix}_meta`,
    events: `${prefix}.events`,
    workSubject: (queue, band, handler) => `${prefix}.work.${queue}.${band}.${handler}`,
    queueSubjects: (queue) => `${prefix}.work.${queue}.>`,
    consumer: (queue, band, handler) =>
      `w_${createHash("sha256").update(`${queue}/${band}/${handler}`).digest("hex").slice(0, 24)}`,
  };
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/**
 * The `P_unique` entry of a uniqueKey in its owner's scope. KV keys may not hold every character
 * a uniqueKey may: its hash, behind its owner's hash when the job has an owner. Jobs without one
 * keep the bare hash (the name every key had before keys were scoped), and an owned name, holding
 * a dot, never equals a bare one.
 */
export const uniqueKeyId = (uniqueKey: string, owner: string | null): string =>
  owner === null ? sha256(uniqueKey) : `${sha256(owner)}.${sha256(uniqueKey)}`;
