/** `client.schedules`: the library's `ferry.schedules` over `ferry.v1.ScheduleService`. */
import type { ScheduleCaller } from "../api/caller.js";
import type { ScheduleView, ScheduleWhen } from "../api/schedules.js";
import type { Duration } from "../core/duration.js";
import { invalidArgument, notFound } from "../core/errors.js";
import type { Connection } from "./connection.js";
import { calling } from "./errors.js";
import { scheduleFrom } from "./from-proto.js";
import {
  durationText,
  launchOptionsMessage,
  payloadValue,
  type RemoteLaunchOptions,
  timeText,
} from "./to-proto.js";

/** What a schedule keeps for the jobs it fires (no handles, no dependencies, no delays). */
export type RemoteScheduleOptions = Omit<
  RemoteLaunchOptions,
  "dependsOn" | "uniqueKey" | "delay" | "runAt"
> & {
  /** The handler to fire; default: the schedule's name. */
  handler?: string;
};

export interface ScheduleChange {
  cron?: string;
  tz?: string;
  every?: Duration;
  repeat?: number;
  nextRunAt?: Date;
}

export class RemoteSchedules implements ScheduleCaller {
  readonly #connection: Connection;

  constructor(connection: Connection) {
    this.#connection = connection;
  }

  /** Creates, or replaces by name. The name is also the handler, unless `options.handler` names another. */
  create(
    name: string,
    when: ScheduleWhen,
    payload?: unknown,
    options: RemoteScheduleOptions = {},
  ): Promise<ScheduleView> {
    return calling(async () => {
      const { handler, ...jobOptions } = options;
      for (const key of ["dependsOn", "uniqueKey", "delay", "runAt"]) {
        if (key in jobOptions) throw invalidArgument(`schedules do not take the ${key} option`);
      }
      if (when === null || typeof when !== "object")
        throw invalidArgument("schedule takes { cron } or { every }");
      const schedule = await this.#connection.schedules.create({
        name,
        ...(handler === undefined ? {} : { handler }),
        ...("cron" in when ? { cron: when.cron, ...(when.tz === undefined ? {} : { tz: when.tz }) } : {}),
        ...("every" in when ? { every: durationText(when.every, "every") } : {}),
        ...(when.repeat === undefined ? {} : { repeat: when.repeat }),
        payload: payloadValue(payload),
        options: launchOptionsMessage(jobOptions),
      });
      return scheduleFrom(schedule);
    });
  }

  list(): Promise<ScheduleView[]> {
    return calling(async () => (await this.#connection.schedules.list({})).schedules.map(scheduleFrom));
  }

  get(id: string): Promise<ScheduleView> {
    return calling(async () => {
      const found = (await this.list()).find((schedule) => schedule.id === id);
      if (found === undefined) throw notFound("schedule");
      return found;
    });
  }

  pause(id: string): Promise<ScheduleView> {
    return calling(async () => scheduleFrom(await this.#connection.schedules.pause({ id })));
  }

  /** Resumes; a tick missed while paused fires once, at the next scheduler pass. */
  resume(id: string): Promise<ScheduleView> {
    return calling(async () => scheduleFrom(await this.#connection.schedules.resume({ id })));
  }

  async cancel(id: string): Promise<void> {
    await calling(() => this.#connection.schedules.cancel({ id }));
  }

  update(id: string, change: ScheduleChange): Promise<ScheduleView> {
    return calling(async () => {
      const schedule = await this.#connection.schedules.update({
        id,
        ...(change.cron === undefined ? {} : { cron: change.cron }),
        ...(change.tz === undefined ? {} : { tz: change.tz }),
        ...(change.every === undefined ? {} : { every: durationText(change.every, "every") }),
        ...(change.repeat === undefined ? {} : { repeat: change.repeat }),
        ...(change.nextRunAt === undefined ? {} : { nextRunAt: timeText(change.nextRunAt, "nextRunAt") }),
      });
      return scheduleFrom(schedule);
    });
  }
}
