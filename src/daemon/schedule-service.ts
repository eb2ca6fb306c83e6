/**
 * `ferry.v1.ScheduleService`: the library's schedules for a remote caller. A schedule belongs to
 * the user who made it and fires jobs owned by that user:
 *
 * - `admin`: every schedule;
 * - `submitter`: makes schedules (for handlers it may launch), and sees and changes its own only;
 *   another user's schedule answers FERRY_NOT_FOUND, and its name cannot be taken over;
 * - `viewer`: lists every schedule, nothing else.
 *
 * What makes a schedule run (create, update, resume) needs the caller's right to launch its
 * handler; resume also needs its owner's, which the scheduler checks again at every firing
 * (`firingGate`): a schedule whose owner lost that right is paused, with the reason in `List`.
 * Quotas apply to launches, not to the jobs a schedule fires later.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import type { Schedules, ScheduleView, ScheduleWhen } from "../api/schedules.js";
import { ErrorCode, FerryError, invalidArgument, notFound } from "../core/errors.js";
import { checkHandlerName } from "../core/names.js";
import type { ScheduleService } from "../gen/ferry/v1/schedules_pb.js";
import type { FiringGate } from "../scheduler/fire.js";
import { scheduleToWire } from "../wire/rows.js";
import type { Caller } from "./authn.js";
import { checkLaunchRights } from "./launch-rights.js";
import { launchOptionsOf, payloadOf } from "./rpc-convert.js";
import { answering, denied } from "./rpc-errors.js";

export interface ScheduleServiceOptions {
  readonly callerOf: (context: HandlerContext) => Caller;
  readonly restrictedHandlers?: ReadonlySet<string>;
  /** Whether a schedule's owner may still start its handler; none with authentication off. */
  readonly firingGate?: FiringGate;
}

export function scheduleService(
  ferry: Ferry,
  options: ScheduleServiceOptions,
): ServiceImpl<typeof ScheduleService> {
  const restricted = options.restrictedHandlers ?? new Set<string>();

  /**
   * The schedules the caller reaches: every one for an admin, its own for a submitter (another
   * user's answers FERRY_NOT_FOUND as a missing one: ids are not to be probed).
   */
  const scheduleScope = (caller: Caller): Schedules =>
    caller.role === "admin" ? ferry.schedules : ferry.schedules.as(caller.user);

  /** The caller's schedules, once it may change schedules, and the id, once it may be one. */
  const changing = (context: HandlerContext, id: string): Schedules => {
    const caller = options.callerOf(context);
    if (caller.role === "viewer") throw denied("change schedules");
    if (typeof id !== "string" || id.length > 64) throw notFound("schedule");
    return scheduleScope(caller);
  };

  /** The schedule, once the caller may change it and launch its handler (changing it can make it fire). */
  const mineToRun = async (context: HandlerContext, id: string) => {
    const schedules = changing(context, id);
    const view = await schedules.get(id);
    checkLaunchRights(options.callerOf(context), [view.handler], restricted);
    return { schedules, view };
  };

  /** A schedule as this caller sees it: its owner for admins only. */
  const out = (context: HandlerContext, view: ScheduleView) =>
    scheduleToWire(view, options.callerOf(context).role === "admin");

  return {
    create: (request, context) =>
      answering(async () => {
        const caller = options.callerOf(context);
        const handler = checkHandlerName(request.handler ?? request.name);
        checkLaunchRights(caller, [handler], restricted);
        // Upserting by name must not take over another user's schedule of that name.
        const existing = (await ferry.schedules.list()).find((s) => s.name === request.name);
        if (existing !== undefined && caller.role !== "admin" && existing.owner !== caller.user) {
          throw new FerryError(ErrorCode.PermissionDenied, "a schedule of this name belongs to another user");
        }
        // Options a schedule does not take (delay, run_at, unique_key, depends_on) are refused
        // by ferry.schedule with FERRY_INVALID_ARGUMENT.
        const jobOptions = launchOptionsOf(request.options, caller.user) as ScheduledOptions;
        const made = await ferry.schedule(request.name, whenOf(request), payloadOf(request.payload), {
          ...jobOptions,
          handler,
        });
        return out(context, made);
      }),

    list: (_request, context) =>
      answering(async () => {
        const caller = options.callerOf(context);
        // Submitters see their own; viewers and admins every schedule.
        const views = await (caller.role === "submitter"
          ? ferry.schedules.as(caller.user)
          : ferry.schedules
        ).list();
        return { schedules: views.map((view) => scheduleToWire(view, caller.role === "admin")) };
      }),

    pause: (request, context) =>
      answering(async () => out(context, await changing(context, request.id).pause(request.id))),

    resume: (request, context) =>
      answering(async () => {
        const { schedules, view } = await mineToRun(context, request.id);
        // An admin resuming another user's schedule: it would only be paused again at its next tick.
        const refusal = options.firingGate?.(view.owner, view.handler);
        if (refusal !== undefined)
          throw new FerryError(ErrorCode.PermissionDenied, `cannot resume: ${refusal}`);
        return out(context, await schedules.resume(view.id));
      }),

    cancel: (request, context) =>
      answering(async () => {
        await changing(context, request.id).cancel(request.id);
        return {};
      }),

    update: (request, context) =>
      answering(async () => {
        const {
          schedules,
          view: { id },
        } = await mineToRun(context, request.id);
        const nextRunAt = request.nextRunAt === undefined ? undefined : new Date(request.nextRunAt);
        if (nextRunAt !== undefined && Number.isNaN(nextRunAt.getTime())) {
          throw invalidArgument("next_run_at must be an RFC 3339 time");
        }
        return out(
          context,
          await schedules.update(id, {
            ...(request.cron === undefined ? {} : { cron: request.cron }),
            ...(request.tz === undefined ? {} : { tz: request.tz }),
            ...(request.every === undefined ? {} : { every: request.every }),
            ...(request.repeat === undefined ? {} : { repeat: request.repeat }),
            ...(nextRunAt === undefined ? {} : { nextRunAt }),
          }),
        );
      }),
  };
}

type ScheduledOptions = NonNullable<Parameters<Ferry["schedule"]>[3]>;

function whenOf(request: {
  cron?: string | undefined;
  tz?: string | undefined;
  every?: string | undefined;
  repeat?: number | undefined;
}): ScheduleWhen {
  const repeat = request.repeat === undefined ? {} : { repeat: request.repeat };
  if (request.cron !== undefined && request.every !== undefined)
    throw invalidArgument("give cron or every, not both");
  if (request.cron !== undefined)
    return { cron: request.cron, ...(request.tz === undefined ? {} : { tz: request.tz }), ...repeat };
  if (request.every !== undefined) return { every: request.every, ...repeat };
  throw invalidArgument("a schedule needs cron or every");
}
