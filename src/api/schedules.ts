import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument, notFound } from "../core/errors.js";
import { newJobId } from "../core/ids.js";
import { checkHandlerName } from "../core/names.js";
import { type LaunchOptions, resolveLaunchOptions } from "../core/options.js";
import { checkCron, nextRunAfter } from "../scheduler/next-run.js";
import { getSerializer } from "../serializers/index.js";
import type { ScheduleRecord, ScheduleSpec, Store } from "../store/store.js";
import type { ScheduleView, ScheduleWhen } from "./api-types.js";
import type { ScheduleCaller } from "./caller.js";

export type { ScheduleView, ScheduleWhen } from "./api-types.js";

/** Options a schedule keeps for the jobs it fires (no handles, no transactions, no dependencies). */
type ScheduledJobOptions = Omit<LaunchOptions, "tx" | "dependsOn" | "uniqueKey" | "delay" | "runAt">;

const nameShape = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function toSpec(when: ScheduleWhen): ScheduleSpec {
  if (when === null || typeof when !== "object")
    throw invalidArgument("schedule takes { cron } or { every }");
  if ("cron" in when && "every" in when) throw invalidArgument("give cron or every, not both");
  if ("cron" in when) {
    const tz = when.tz ?? "UTC";
    checkCron(when.cron, tz);
    return { kind: "cron", cron: when.cron, tz };
  }
  if ("every" in when) {
    const everyMs = parseDuration(when.every, "every");
    if (everyMs < 1_000) throw invalidArgument("every must be at least 1s");
    return { kind: "every", everyMs };
  }
  throw invalidArgument("schedule takes { cron } or { every }");
}

function checkRepeat(repeat: number | undefined | null): number | null {
  if (repeat === undefined || repeat === null) return null;
  if (!Number.isInteger(repeat) || repeat < 1) throw invalidArgument("repeat must be a positive integer");
  return repeat;
}

const view = (s: ScheduleRecord): ScheduleView => ({
  id: s.id,
  name: s.name,
  handler: s.handler,
  cron: s.spec.kind === "cron" ? s.spec.cron : null,
  tz: s.spec.kind === "cron" ? s.spec.tz : null,
  everyMs: s.spec.kind === "every" ? s.spec.everyMs : null,
  repeatLeft: s.repeatLeft,
  paused: s.paused,
  pausedReason: s.paused ? s.pausedReason : null,
  nextRunAt: s.nextRunAt === null ? null : new Date(s.nextRunAt),
  lastFiredAt: s.lastFiredAt === null ? null : new Date(s.lastFiredAt),
  owner: s.owner,
});

/**
 * Recurring jobs: each tick fires once across every worker sharing the store. `as(owner)` is one
 * owner's side: its schedules only (another owner's answers FERRY_NOT_FOUND "no such schedule",
 * as an unknown id does), and those it creates are that owner's.
 */
export class Schedules implements ScheduleCaller {
  constructor(
    private readonly store: Store,
    private readonly serializerFor: (queue: string, own: string | null) => string,
    private readonly maxPayloadBytes: number,
    private readonly ensureOpen: () => void,
    /** Whose schedules these calls reach; every one's when undefined. */
    readonly owner?: string,
  ) {}

  /** These schedules for one owner's calls. */
  as(owner: string): Schedules {
    if (typeof owner !== "string" || owner === "") throw invalidArgument("an owner is a non-empty string");
    return new Schedules(this.store, this.serializerFor, this.maxPayloadBytes, this.ensureOpen, owner);
  }

  /** The schedule, once this scope reaches it. */
  private async reach(id: string): Promise<ScheduleRecord> {
    const record = await this.store.getSchedule(id);
    // Another owner's schedule answers as a missing one: ids are not to be probed.
    if (record === undefined || (this.owner !== undefined && record.owner !== this.owner)) {
      throw notFound("schedule");
    }
    return record;
  }

  /** Creates, or replaces by name. The name is also the handler, unless `options.handler` names another. */
  async create(
    name: string,
    when: ScheduleWhen,
    payload?: unknown,
    options: ScheduledJobOptions & { handler?: string } = {},
  ): Promise<ScheduleView> {
    this.ensureOpen();
    if (typeof name !== "string" || !nameShape.test(name))
      throw invalidArgument("schedule name must be 1-128 of A-Z a-z 0-9 _ . : -");
    const { handler: handlerOption, ...jobOptions } = options;
    // The schedule's name is its handler unless one is given: ferry.schedule("report.daily", …).
    const handler = checkHandlerName(handlerOption ?? name);
    for (const key of ["tx", "dependsOn", "uniqueKey", "delay", "runAt"]) {
      if (key in jobOptions) throw invalidArgument(`schedules do not take the ${key} option`);
    }
    if (this.owner !== undefined) {
      const taken = (await this.store.listSchedules()).find((s) => s.name === name);
      // Replacing by name must not take over another owner's schedule of that name.
      if (taken !== undefined && taken.owner !== this.owner) {
        throw new FerryError(ErrorCode.PermissionDenied, "a schedule of this name belongs to another user");
      }
      (jobOptions as LaunchOptions).owner = this.owner;
    }
    const resolved = resolveLaunchOptions(jobOptions);
    const serializer = this.serializerFor(resolved.queue, resolved.serializer);
    const spec = toSpec(when);
    const now = await this.store.now();
    const record = await this.store.upsertSchedule({
      id: newJobId(),
      name,
      handler,
      spec,
      repeatLeft: checkRepeat(when.repeat),
      payload: getSerializer(serializer).encode(payload ?? null, { maxBytes: this.maxPayloadBytes }),
      serializer,
      options: JSON.stringify(jobOptions),
      owner: resolved.owner,
      paused: false,
      nextRunAt: nextRunAfter(spec, now, null),
    });
    return view(record);
  }

  async list(): Promise<ScheduleView[]> {
    this.ensureOpen();
    const all = await this.store.listSchedules();
    return (this.owner === undefined ? all : all.filter((s) => s.owner === this.owner)).map(view);
  }

  async get(id: string): Promise<ScheduleView> {
    this.ensureOpen();
    return view(await this.reach(id));
  }

  async pause(id: string): Promise<ScheduleView> {
    return this.patch(id, { paused: true, pausedReason: null });
  }

  /** Resumes; a tick missed while paused fires once, at the next scheduler pass. */
  async resume(id: string): Promise<ScheduleView> {
    return this.patch(id, { paused: false, pausedReason: null });
  }

  async cancel(id: string): Promise<void> {
    this.ensureOpen();
    if (this.owner !== undefined) await this.reach(id);
    if (!(await this.store.deleteSchedule(id))) throw notFound("schedule");
  }

  async update(
    id: string,
    change: { cron?: string; tz?: string; every?: Duration; repeat?: number | null; nextRunAt?: Date },
  ): Promise<ScheduleView> {
    this.ensureOpen();
    const current = await this.reach(id);
    const patch: { spec?: ScheduleSpec; repeatLeft?: number | null; nextRunAt?: number | null } = {};
    if (change.cron !== undefined || change.every !== undefined || change.tz !== undefined) {
      const when: ScheduleWhen =
        change.every !== undefined
          ? { every: change.every }
          : {
              cron: change.cron ?? (current.spec.kind === "cron" ? current.spec.cron : ""),
              tz: change.tz ?? (current.spec.kind === "cron" ? current.spec.tz : "UTC"),
            };
      patch.spec = toSpec(when);
      patch.nextRunAt = nextRunAfter(patch.spec, await this.store.now(), null);
    }
    if (change.repeat !== undefined) patch.repeatLeft = checkRepeat(change.repeat);
    if (change.nextRunAt !== undefined) {
      if (!(change.nextRunAt instanceof Date) || Number.isNaN(change.nextRunAt.getTime())) {
        throw invalidArgument("nextRunAt must be a valid Date");
      }
      patch.nextRunAt = change.nextRunAt.getTime();
    }
    return this.patch(id, patch, true);
  }

  private async patch(
    id: string,
    patch: Parameters<Store["updateSchedule"]>[1],
    reached = false,
  ): Promise<ScheduleView> {
    this.ensureOpen();
    if (this.owner !== undefined && !reached) await this.reach(id);
    const record = await this.store.updateSchedule(id, patch);
    if (record === undefined) throw notFound("schedule");
    return view(record);
  }
}
