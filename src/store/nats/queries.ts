/**
 * Reading the NATS store: jobs by id, pages and filters through the listing index (job-index.ts),
 * counts of active jobs, and stats (per-queue states from the records, lifetime counters from each
 * process's `count.<origin>` key).
 */
import { isFinished, type JobState } from "../../core/job.js";
import { toStoreStats } from "../stats.js";
import type { JobFilter, JobRecord, ListRequest, StoreStats } from "../store.js";
import type { NatsContext } from "./context.js";
import { type StoredJob, toJobRecord } from "./job-codec.js";
import type { Versioned } from "./job-repo.js";
import { listKeys } from "./kv-keys.js";

/** Records read at most per round trip by lists and bulk controls. */
const LIST_CHUNK = 256;

/**
 * The records that may match `filter`, in id (launch) order: the index narrows by queue and
 * owner without reading records; records are read a chunk at a time, as the caller goes.
 */
export async function* candidates(
  ctx: NatsContext,
  filter: JobFilter,
  afterId?: string,
  firstChunk = LIST_CHUNK,
): AsyncGenerator<Versioned> {
  const ids = await ctx.index.ids(filter, afterId);
  // A page of a few starts with a read of a few; a filter that skips many doubles it each time.
  let chunk = Math.max(1, Math.min(firstChunk, LIST_CHUNK));
  for (let i = 0; i < ids.length; i += chunk, chunk = Math.min(chunk * 2, LIST_CHUNK)) {
    for (const found of await ctx.repo.readMany(ids.slice(i, i + chunk))) yield found;
  }
}

export function makeQueries(ctx: NatsContext) {
  const { repo } = ctx;
  return {
    async getJob(id: string): Promise<JobRecord | undefined> {
      const found = await repo.read(id);
      return found === undefined ? undefined : toJobRecord(found.job);
    },

    async getJobs(ids: readonly string[]): Promise<JobRecord[]> {
      return (await repo.readMany(ids)).map((v) => toJobRecord(v.job));
    },

    async listJobs(request: ListRequest): Promise<JobRecord[]> {
      const page: JobRecord[] = [];
      for await (const { job } of candidates(ctx, request, request.afterId, request.limit)) {
        if (!matches(job, request)) continue;
        page.push(toJobRecord(job, false));
        if (page.length >= request.limit) break;
      }
      return page;
    },

    /** Reads the owner's records through the index: the cost grows with the jobs it has stored. */
    async countActive(owner: string, limit: number): Promise<number> {
      // Counting no further than 0 is 0, as the SQL stores' LIMIT 0 answers (the loop below would say 1).
      if (limit <= 0) return 0;
      let active = 0;
      for await (const { job } of candidates(ctx, { owner })) {
        if (job.owner !== owner || isFinished(job.state)) continue;
        if (++active >= limit) break;
      }
      return active;
    },

    async stats(): Promise<StoreStats> {
      const counts = new Map<string, number>();
      for await (const { job } of repo.scan()) {
        const key = `${job.queue}\u0000${job.state}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await ctx.counters.flush();
      const totals = new Map<string, number>();
      for (const key of await listKeys(ctx.r.meta, "count.*")) {
        const entry = await ctx.r.meta.get(key);
        if (entry === null || entry.operation !== "PUT") continue;
        for (const [name, value] of Object.entries(entry.json<Record<string, number>>())) {
          totals.set(name, (totals.get(name) ?? 0) + value);
        }
      }
      return toStoreStats(
        [...counts].map(([key, n]) => {
          const [queue, state] = key.split("\u0000") as [string, JobState];
          return { queue, state, n };
        }),
        [...totals].map(([name, value]) => ({ name, value })),
      );
    },
  };
}

export function matches(job: StoredJob, filter: JobFilter): boolean {
  if (filter.state !== undefined && job.state !== filter.state) return false;
  if (filter.queue !== undefined && job.queue !== filter.queue) return false;
  if (filter.owner !== undefined && job.owner !== filter.owner) return false;
  if (filter.handler !== undefined && job.handler !== filter.handler) return false;
  if (filter.label !== undefined && (job.label === null || !likePattern(filter.label).test(job.label)))
    return false;
  return true;
}

/** SQL LIKE (`%`, `_`) as a regular expression, everything else literal. */
function likePattern(pattern: string): RegExp {
  const source = [...pattern]
    .map((c) => (c === "%" ? ".*" : c === "_" ? "." : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`, "s");
}
