import { invalidArgument, notFound } from "../core/errors.js";
import { hashCookie, newCookie, newJobId } from "../core/ids.js";
import type { Handle } from "../core/job.js";
import { checkHandlerName } from "../core/names.js";
import { type LaunchOptions, resolveLaunchOptions } from "../core/options.js";
import { getSerializer } from "../serializers/index.js";
import type { JobRecord, NewJob } from "../store/store.js";
import type { LaunchItem } from "./api-types.js";

/** What preparing a launch needs from the Ferry that launches it. */
export interface LaunchContext {
  readonly serializerFor: (queue: string, own: string | null) => string;
  readonly maxPayloadBytes: number;
}

/**
 * The ids of a launch's `dependsOn` parents, once each. A parent is named by its handle (you may
 * only wait on jobs you hold, `jobOf` checks the cookie) and, when the launch has an owner, must
 * be that owner's job: another owner's answers exactly as an unknown handle (FERRY_NOT_FOUND,
 * `no such job`), so a leaked handle neither links to that job nor tells that it exists. Checked
 * before the launch is prepared, so no other error can tell the two cases apart. The store checks
 * the owner again inside its write.
 */
export async function parentIdsOf(
  dependsOn: unknown,
  owner: unknown,
  jobOf: (handle: Handle) => Promise<JobRecord>,
): Promise<string[]> {
  if (dependsOn === undefined) return [];
  if (!Array.isArray(dependsOn) || dependsOn.length > 100)
    throw invalidArgument("dependsOn is a list of up to 100 handles");
  const ids = new Set<string>();
  for (const handle of dependsOn) {
    const parent = await jobOf(handle as Handle);
    if (owner !== undefined && owner !== null && parent.owner !== owner) throw notFound();
    ids.add(parent.id);
  }
  return [...ids];
}

/** A launch checked and built: the job to store and the cookie its handle will carry. */
export interface PreparedLaunch {
  readonly job: NewJob;
  readonly cookie: string;
}

/** Validates one launch and builds the stored job; synchronous, so bulk launches stay cheap. */
export function prepareLaunch(
  item: LaunchItem,
  detached: boolean,
  parents: readonly string[],
  context: LaunchContext,
): PreparedLaunch {
  const definition = typeof item.handler === "string" ? undefined : item.handler;
  const handler = checkHandlerName(definition === undefined ? item.handler : definition.name);
  let payload: unknown = item.payload ?? null;
  if (definition?.schema !== undefined) {
    try {
      payload = definition.schema.parse(payload);
    } catch (error) {
      throw invalidArgument(`payload for ${handler} is invalid: ${(error as Error).message}`.slice(0, 512));
    }
  }
  const merged: LaunchOptions | undefined =
    definition === undefined || Object.keys(definition.defaults).length === 0
      ? item.options
      : ({ ...definition.defaults, ...item.options } as LaunchOptions);
  const o = resolveLaunchOptions(merged);
  const serializer = context.serializerFor(o.queue, o.serializer);
  const bytes = getSerializer(serializer).encode(payload, { maxBytes: context.maxPayloadBytes });
  const cookie = detached ? "" : newCookie();
  return {
    cookie,
    job: {
      id: newJobId(),
      handler,
      queue: o.queue,
      payload: bytes,
      serializer,
      cookieHash: detached ? null : hashCookie(cookie),
      owner: o.owner,
      priority: o.priority,
      delayMs: o.delayMs,
      runAt: o.runAt,
      maxAttempts: o.maxAttempts,
      policy: o.policy,
      uniqueKey: o.uniqueKey,
      label: o.label,
      group: o.group,
      dependsOn: parents,
      detached,
    },
  };
}
