/** The daemon's access document (users, roles, token hashes) on the NATS store: one key of the meta bucket. */
import type { AccessDocument } from "../store.js";
import type { NatsContext } from "./context.js";
import { isRevisionConflict } from "./job-repo.js";

const ACCESS_KEY = "access";

export async function readAccess(ctx: NatsContext): Promise<AccessDocument | undefined> {
  const entry = await ctx.r.meta.get(ACCESS_KEY);
  if (entry === null || entry.operation !== "PUT") return undefined;
  return { revision: entry.revision, data: entry.value };
}

/** Compare-and-set at `expectedRevision` (0: must not exist yet); null when another write came first. */
export async function writeAccess(
  ctx: NatsContext,
  data: Uint8Array,
  expectedRevision: number,
): Promise<number | null> {
  try {
    return expectedRevision === 0
      ? await ctx.r.meta.create(ACCESS_KEY, data)
      : await ctx.r.meta.update(ACCESS_KEY, data, expectedRevision);
  } catch (error) {
    if (isRevisionConflict(error)) return null;
    throw error;
  }
}
