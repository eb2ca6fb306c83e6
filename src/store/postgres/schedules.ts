import { type ScheduleRow, toScheduleRecord } from "../rows.js";
import type {
  ScheduleFiring,
  ScheduleInput,
  ScheduleJobFiring,
  SchedulePatch,
  ScheduleRecord,
} from "../store.js";
import type { Client } from "./connection.js";

/** Schedules: CRUD, and firing each due tick once across every process (row locks, SKIP LOCKED). */
export function makeSchedules(s: string) {
  return {
    async upsert(client: Client, input: ScheduleInput): Promise<ScheduleRecord> {
      const rows = await client.query<ScheduleRow>(
        `INSERT INTO ${s}.schedules (id, name, handler, spec, repeat_left, payload, serializer, options, owner, paused,
           next_run_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ${s}.ms_now())
         ON CONFLICT (name) DO UPDATE SET handler = excluded.handler, spec = excluded.spec,
           repeat_left = excluded.repeat_left, payload = excluded.payload, serializer = excluded.serializer,
           options = excluded.options, owner = excluded.owner, paused = excluded.paused,
           paused_reason = NULL, next_run_at = excluded.next_run_at
         RETURNING *`,
        [
          input.id,
          input.name,
          input.handler,
          JSON.stringify(input.spec),
          input.repeatLeft,
          Buffer.from(input.payload),
          input.serializer,
          input.options,
          input.owner,
          input.paused,
          input.nextRunAt,
        ],
      );
      return toScheduleRecord(rows.rows[0]!);
    },
    getSql: `SELECT * FROM ${s}.schedules WHERE id = $1`,
    listSql: `SELECT * FROM ${s}.schedules ORDER BY name`,
    deleteSql: `DELETE FROM ${s}.schedules WHERE id = $1`,
    anyDueSql: `SELECT 1 FROM ${s}.schedules WHERE NOT paused AND next_run_at IS NOT NULL AND next_run_at <= ${s}.ms_now() LIMIT 1`,
    async update(client: Client, id: string, patch: SchedulePatch): Promise<ScheduleRecord | undefined> {
      const sets: string[] = [];
      const values: unknown[] = [id];
      const set = (column: string, value: unknown) => {
        values.push(value);
        sets.push(`${column} = $${values.length}`);
      };
      if (patch.spec !== undefined) set("spec", JSON.stringify(patch.spec));
      if (patch.repeatLeft !== undefined) set("repeat_left", patch.repeatLeft);
      if (patch.nextRunAt !== undefined) set("next_run_at", patch.nextRunAt);
      if (patch.paused !== undefined) set("paused", patch.paused);
      if (patch.pausedReason !== undefined) set("paused_reason", patch.pausedReason);
      const rows =
        sets.length > 0
          ? await client.query<ScheduleRow>(
              `UPDATE ${s}.schedules SET ${sets.join(", ")} WHERE id = $1 RETURNING *`,
              values,
            )
          : await client.query<ScheduleRow>(`SELECT * FROM ${s}.schedules WHERE id = $1`, [id]);
      return rows.rows[0] === undefined ? undefined : toScheduleRecord(rows.rows[0]);
    },
    /**
     * Locks the due schedules (skipping ones another process is firing), fires each and moves it
     * on (or pauses it, when `fire` holds it back), all in the caller's transaction: a tick fires once, and a crash before commit fires it later.
     */
    async fireDue(
      client: Client,
      fire: (schedule: ScheduleRecord, now: number) => ScheduleFiring,
    ): Promise<{ firings: ScheduleJobFiring[] }> {
      const due = await client.query<ScheduleRow & { now: number }>(
        `SELECT *, ${s}.ms_now() AS now FROM ${s}.schedules
         WHERE NOT paused AND next_run_at IS NOT NULL AND next_run_at <= ${s}.ms_now()
         ORDER BY next_run_at FOR UPDATE SKIP LOCKED`,
      );
      const firings: ScheduleJobFiring[] = [];
      for (const row of due.rows) {
        const firing = fire(toScheduleRecord(row), row.now);
        if ("pause" in firing) {
          await client.query(`UPDATE ${s}.schedules SET paused = true, paused_reason = $2 WHERE id = $1`, [
            row.id,
            firing.pause,
          ]);
          continue;
        }
        await client.query(
          `UPDATE ${s}.schedules SET next_run_at = $2, last_fired_at = $3,
             repeat_left = CASE WHEN repeat_left IS NULL THEN NULL ELSE repeat_left - 1 END
           WHERE id = $1`,
          [row.id, firing.nextRunAt, row.now],
        );
        firings.push(firing);
      }
      return { firings };
    },
  };
}
