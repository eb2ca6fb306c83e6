/**
 * `LaunchEach`: many launches and submits stored in one transaction, each judged alone: its
 * handler's rights, its payload and options, and the caller's quota. One refused job fails only
 * itself, with the code and message the same `Launch` alone would have answered. The remote
 * client sends concurrent `Launch` and `Submit` calls this way.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Ferry, LaunchEachItem } from "../api/ferry.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import type {
  LaunchEachRequest,
  LaunchEachResponseSchema,
  LaunchEachResultSchema,
} from "../gen/ferry/v1/jobs_pb.js";
import type { JobAccess } from "./job-access.js";
import type { Admission } from "./quotas.js";
import { launchOptionsOf, payloadOf } from "./rpc-convert.js";
import { answering } from "./rpc-errors.js";

/** Jobs one LaunchEach may carry (as LaunchMany). */
export const MAX_EACH = 1000;
/**
 * `dependsOn` handles one LaunchEach may name in all. Each is a store read before anything is
 * stored, so without this one call could cost 1,000 jobs × 100 parents = 100,000 reads, a
 * thousand times what a Launch may. Ten Launches' worth; the remote client splits its batches
 * to stay within it.
 */
export const MAX_EACH_PARENTS = 1000;
/** A job's own cap (`dependsOn is a list of up to 100 handles`): a job over it is refused alone. */
const MAX_PARENTS_PER_JOB = 100;

type Result = NonNullable<MessageInitShape<typeof LaunchEachResultSchema>["result"]>;

const refused = (error: FerryError): Result => ({
  case: "refused",
  value: { code: error.code, message: error.message },
});

export function launchEachCall(ferry: Ferry, access: JobAccess) {
  return (
    request: LaunchEachRequest,
    context: HandlerContext,
  ): Promise<MessageInitShape<typeof LaunchEachResponseSchema>> =>
    answering(async () => {
      // Who is calling is the call's question, not one job's: no good token refuses all of it.
      const caller = access.callerOf(context);
      if (request.jobs.length > MAX_EACH) throw invalidArgument(`at most ${MAX_EACH} jobs per LaunchEach`);
      if (parentsOf(request) > MAX_EACH_PARENTS) {
        throw invalidArgument(`at most ${MAX_EACH_PARENTS} dependsOn handles in all per LaunchEach`);
      }
      const results: Result[] = new Array(request.jobs.length);
      const items: LaunchEachItem[] = [];
      const slots: number[] = [];
      for (const [index, { job, submit }] of request.jobs.entries()) {
        try {
          if (job === undefined) throw invalidArgument("each item of LaunchEach needs a job");
          access.launcher(context, [job.handler]);
          items.push({
            handler: job.handler,
            payload: payloadOf(job.payload),
            options: launchOptionsOf(job.options, caller.user),
            submit,
          });
          slots.push(index);
        } catch (error) {
          if (!(error instanceof FerryError)) throw error;
          results[index] = refused(error);
        }
      }
      // One admission per job, in order: past the quota, exactly the jobs beyond it are refused.
      const admitted: { item: LaunchEachItem; slot: number; admission: Admission | undefined }[] = [];
      for (const [k, item] of items.entries()) {
        try {
          admitted.push({ item, slot: slots[k]!, admission: await access.admit(caller, 1) });
        } catch (error) {
          if (!(error instanceof FerryError) || error.code !== ErrorCode.QuotaExceeded) {
            // The call fails whole (the store could not count the user's jobs): nothing is stored,
            // so the jobs admitted before this one give their places back.
            for (const { admission } of admitted) admission?.refund();
            throw error;
          }
          results[slots[k]!] = refused(error);
        }
      }
      let settled: Awaited<ReturnType<Ferry["launchEach"]>>;
      try {
        settled = await ferry.launchEach(admitted.map((a) => a.item));
      } catch (error) {
        for (const { admission } of admitted) admission?.refund();
        throw error;
      }
      for (const [k, outcome] of settled.entries()) {
        const { slot, admission } = admitted[k]!;
        if (outcome.ok) {
          admission?.stored();
          const { id, cookie, deduplicated } = outcome.handle;
          results[slot] = { case: "launched", value: { handle: { id, cookie }, deduplicated } };
        } else {
          admission?.refund();
          results[slot] = refused(outcome.error);
        }
      }
      return { results: results.map((result) => ({ result })) };
    });
}

/** The `dependsOn` handles the call's jobs name, but for jobs refused alone for naming too many. */
function parentsOf(request: LaunchEachRequest): number {
  let total = 0;
  for (const { job } of request.jobs) {
    const n = job?.options?.dependsOn.length ?? 0;
    if (n <= MAX_PARENTS_PER_JOB) total += n;
  }
  return total;
}
