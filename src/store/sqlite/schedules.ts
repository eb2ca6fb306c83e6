import { type ScheduleRow, toScheduleRecord } from "../rows.js";
import type {
  EnqueueResult,
  NewJob,
  ScheduleFiring,
  ScheduleInput,
  SchedulePatch,
  ScheduleRecord,
} from "../store.js";
import type { Db } from "./connection.js";

type Enqueue = (jobs: readonly NewJob[], now: number) => EnqueueResult[];

export function makeSchedules(db: Db, enqueue: Enqueue) {
  const upsert = db.prepare(
    `INSERT INTO schedules (id, name, handler, spec, repeat_left, payload, serializer, options, owner, paused,
       next_run_at, created_at)
     VALUES (@id, @name, @handler, @spec, @repeatLeft, @payload, @serializer, @options, @owner, @paused,
       @nextRunAt, @now)
     ON CONFLICT (name) DO UPDATE SET handler = excluded.handler, spec = excluded.spec,
       repeat_left = excluded.repeat_left, payload = excluded.payload, serializer = excluded.serializer,
       options = excluded.options, owner = excluded.owner, paused = excluded.paused,
       paused_reason = NULL, next_run_at = excluded.next_run_at
     RETURNING *`,
  );
  const one = db.prepare("SELECT * FROM schedules WHERE id = ?");
  const all = db.prepare("SELECT * FROM schedules ORDER BY name");
  const remove = db.prepare("DELETE FROM schedules WHERE id = ?");
  const due = db.prepare(
    "SELECT * FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at",
  );
  const anyDue = db.prepare(
    "SELECT 1 FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= ? LIMIT 1",
  );
  const advance = db.prepare(
    `UPDATE schedules SET next_run_at = @next, last_fired_at = @now,
       repeat_left = CASE WHEN repeat_left IS NULL THEN NULL ELSE repeat_left - 1 END
     WHERE id = @id AND next_run_at = @was`,
  );
  const hold = db.prepare(
    "UPDATE schedules SET paused = 1, paused_reason = @reason WHERE id = @id AND next_run_at = @was",
  );

  return {
    upsert(input: ScheduleInput, now: number): ScheduleRecord {
      const row = upsert.get({
        ...input,
        spec: JSON.stringify(input.spec),
        paused: input.paused ? 1 : 0,
        now,
      }) as ScheduleRow;
      return toScheduleRecord(row);
    },
    get(id: string): ScheduleRecord | undefined {
      const row = one.get(id) as ScheduleRow | undefined;
      return row === undefined ? undefined : toScheduleRecord(row);
    },
    list(): ScheduleRecord[] {
      return (all.all() as ScheduleRow[]).map(toScheduleRecord);
    },
    update(id: string, patch: SchedulePatch): ScheduleRecord | undefined {
      const sets: string[] = [];
      const params: Record<string, unknown> = { id };
      if (patch.spec !== undefined) {
        sets.push("spec = @spec");
        params.spec = JSON.stringify(patch.spec);
      }
      if (patch.repeatLeft !== undefined) {
        sets.push("repeat_left = @repeatLeft");
        params.repeatLeft = patch.repeatLeft;
      }
      if (patch.nextRunAt !== undefined) {
        sets.push("next_run_at = @nextRunAt");
        params.nextRunAt = patch.nextRunAt;
      }
      if (patch.paused !== undefined) {
        sets.push("paused = @paused");
        params.paused = patch.paused ? 1 : 0;
      }
      if (patch.pausedReason !== undefined) {
        sets.push("paused_reason = @pausedReason");
        params.pausedReason = patch.pausedReason;
      }
      if (sets.length > 0) db.prepare(`UPDATE schedules SET ${sets.join(", ")} WHERE id = @id`).run(params);
      return this.get(id);
    },
    delete(id: string): boolean {
      return remove.run(id).changes > 0;
    },
    anyDue: (now: number): boolean => anyDue.get(now) !== undefined,
    /** Inside one IMMEDIATE transaction: another process can't fire the same tick. */
    fireDue(fire: (schedule: ScheduleRecord, now: number) => ScheduleFiring, now: number): NewJob[] {
      const fired: NewJob[] = [];
      for (const row of due.all(now) as ScheduleRow[]) {
        const schedule = toScheduleRecord(row);
        const firing = fire(schedule, now);
        if ("pause" in firing) {
          hold.run({ id: row.id, was: row.next_run_at, reason: firing.pause });
          continue;
        }
        if (advance.run({ id: row.id, was: row.next_run_at, next: firing.nextRunAt, now }).changes === 0)
          continue;
        enqueue([firing.job], now);
        fired.push(firing.job);
      }
      return fired;
    },
  };
}
