import pg from "pg";
import { ErrorCode, FerryError } from "../../core/errors.js";
import type { EnqueueResult, NewJob } from "../store.js";
import { type Client, storeError } from "./connection.js";
import type { makeEnqueue } from "./enqueue.js";
import { Outbox } from "./notifier.js";

/** What `tx` must offer: a `pg` Client or PoolClient inside the caller's open transaction. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

const isQueryable = (value: unknown): value is Queryable =>
  typeof (value as { query?: unknown } | null)?.query === "function";

/**
 * `enqueue` with `tx`: the jobs are written through the caller's open transaction, inside a
 * savepoint, so they (and the wake-up sent with them) exist only if the caller commits.
 */
export async function enqueueInCallerTx(
  tx: unknown,
  jobs: readonly NewJob[],
  enqueue: ReturnType<typeof makeEnqueue>,
  channel: string,
  /** The store's check that it is open, made once `tx` passed its own checks. */
  guard: () => void,
): Promise<EnqueueResult[]> {
  if (!isQueryable(tx)) {
    throw new FerryError(
      ErrorCode.InvalidArgument,
      "tx must be a pg Client or PoolClient in an open transaction",
    );
  }
  if (tx instanceof pg.Pool) {
    throw new FerryError(
      ErrorCode.InvalidArgument,
      "tx must be one client in an open transaction, not a Pool",
    );
  }
  guard();
  const client = tx as unknown as Client;
  // The savepoint proves a transaction is open (else 25P01), and a failure here leaves the
  // caller's transaction usable instead of aborted.
  try {
    await client.query("SAVEPOINT ferry_enqueue");
  } catch (error) {
    if ((error as { code?: unknown }).code === "25P01") {
      throw new FerryError(
        ErrorCode.InvalidArgument,
        "tx must be a client inside an open transaction (BEGIN first)",
      );
    }
    throw storeError(error);
  }
  const outbox = new Outbox();
  try {
    const results = await enqueue(client, jobs, outbox);
    await outbox.send(client, channel);
    await client.query("RELEASE SAVEPOINT ferry_enqueue");
    return results;
  } catch (error) {
    await client.query("ROLLBACK TO SAVEPOINT ferry_enqueue").catch(() => undefined);
    throw storeError(error);
  }
}
