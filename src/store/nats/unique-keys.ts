/**
 * uniqueKey holders of the NATS store: `<key in its owner's scope>` → job id in the unique bucket,
 * created only if absent; taken over by compare-and-set from a holder that finished without
 * letting go.
 */
import { isFinished } from "../../core/job.js";
import type { NewJob } from "../store.js";
import type { NatsContext } from "./context.js";
import type { StoredJob } from "./job-codec.js";
import { isRevisionConflict } from "./job-repo.js";
import { uniqueKeyId } from "./names.js";

/** The unfinished holder of the job's uniqueKey in its owner's scope, or undefined once this job holds it. */
export async function takeUniqueKey(
  ctx: NatsContext,
  { uniqueKey, owner, id }: NewJob,
): Promise<string | undefined> {
  const key = uniqueKeyId(uniqueKey!, owner);
  for (;;) {
    try {
      await ctx.r.unique.create(key, id);
      return undefined;
    } catch (error) {
      if (!isRevisionConflict(error)) throw error;
    }
    const entry = await ctx.r.unique.get(key);
    if (entry === null || entry.operation !== "PUT") continue;
    const holder = entry.string();
    const held = await ctx.repo.read(holder);
    // A holder of another owner is an entry from before keys were scoped (they all had the
    // bare name jobs without an owner keep): it holds nothing in this scope.
    if (held !== undefined && !isFinished(held.job.state) && held.job.owner === owner) return holder;
    // The holder finished (or vanished) without letting go, e.g. it crashed in between.
    try {
      await ctx.r.unique.update(key, id, entry.revision);
      return undefined;
    } catch (error) {
      if (!isRevisionConflict(error)) throw error;
    }
  }
}

export async function releaseUniqueKey(ctx: NatsContext, job: StoredJob): Promise<void> {
  if (job.uniqueKey === null) return;
  const key = uniqueKeyId(job.uniqueKey, job.owner);
  const entry = await ctx.r.unique.get(key);
  if (entry === null || entry.operation !== "PUT" || entry.string() !== job.id) return;
  await ctx.r.unique.purge(key, { previousSeq: entry.revision }).catch(() => undefined);
}
