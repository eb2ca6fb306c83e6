import { invalidArgument } from "../core/errors.js";
import { hashCookie, newCookie, newJobId } from "../core/ids.js";
import { checkHandlerName } from "../core/names.js";
import { type LaunchOptions, resolveLaunchOptions } from "../core/options.js";
import { getSerializer } from "../serializers/index.js";
import type { NewJob } from "../store/store.js";
import type { LaunchItem } from "./ferry.js";

/** What preparing a launch needs from the Ferry that launches it. */
export interface LaunchContext {
  readonly serializerFor: (queue: string, own: string | null) => string;
  readonly maxPayloadBytes: number;
}

/** Validates one launch and builds the stored job; synchronous, so bulk launches stay cheap. */
export function prepareLaunch(
  item: LaunchItem,
  detached: boolean,
  parents: readonly string[],
  context: LaunchContext,
): { job: NewJob; cookie: string } {
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
