import type { CounterDelta } from "../stats.js";
import type { Db, Stmt } from "./connection.js";

const statements = new WeakMap<Db, Stmt>();

/** Adds to the lifetime counters inside the caller's transaction (one statement per counter touched). */
export function bumpCounters(db: Db, delta: CounterDelta): void {
  let update = statements.get(db);
  if (update === undefined) {
    update = db.prepare<unknown[]>("UPDATE counters SET value = value + ? WHERE name = ?");
    statements.set(db, update);
  }
  for (const [name, value] of Object.entries(delta)) {
    if (value) update.run(value, name);
  }
}
