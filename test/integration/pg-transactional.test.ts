/**
 * PostgreSQL only: `launch(…, { tx })` writes the job inside the caller's transaction, and the
 * default launch commits on its own (autonomous, as pg_background's workers do). Against the
 * machine's real server.
 */
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, Ferry, FerryError, type Handle } from "../../src/index.js";
import { freshPgSchema, PG_URL } from "../conformance/stores.js";
import { eventually } from "../helpers/temp.js";

describe("PostgreSQL transactional enqueue", () => {
  let ferry: Ferry;
  let caller: pg.Client;
  let drop: () => Promise<void>;

  beforeEach(async () => {
    const fresh = freshPgSchema();
    drop = fresh.drop;
    ferry = await Ferry.open({ store: fresh.url });
    caller = new pg.Client({ connectionString: PG_URL });
    await caller.connect();
    await caller.query("CREATE TEMP TABLE orders (id int PRIMARY KEY)");
  });

  afterEach(async () => {
    await caller.end();
    await ferry.close({ grace: 0 });
    await drop();
  });

  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => "resolved",
      (error: unknown) => (error instanceof FerryError ? error.code : String(error)),
    );

  it("a job launched with tx exists only once the caller commits, and then runs", async () => {
    const ran: string[] = [];
    const worker = ferry.worker({
      queues: ["default"],
      pollInterval: "1m", // only the commit's notification can wake it in time
      handlers: { "order.mail": async (p: { order: number }) => ran.push(`mail ${p.order}`) },
    });
    await worker.start();
    await caller.query("BEGIN");
    await caller.query("INSERT INTO orders VALUES (1)");
    const handle = await ferry.launch("order.mail", { order: 1 }, { tx: caller });
    // Not committed: nobody else can see it, and no worker runs it.
    expect(await codeOf(ferry.status(handle))).toBe(ErrorCode.NotFound);
    await caller.query("COMMIT");
    await eventually(() => ran.length > 0, "the committed job to run (woken by NOTIFY)", 5_000);
    expect(ran).toEqual(["mail 1"]);
    expect((await ferry.wait(handle, { timeout: "5s" })).state).toBe("completed");
    await worker.stop();
  });

  it("a rollback takes the job with it: its handle reaches nothing", async () => {
    await caller.query("BEGIN");
    const handles: Handle[] = [];
    handles.push(await ferry.launch("order.mail", { order: 2 }, { tx: caller }));
    const many = await ferry.launchMany([
      { handler: "order.mail", payload: { order: 3 }, options: { tx: caller } },
      { handler: "order.mail", payload: { order: 4 }, options: { tx: caller } },
    ]);
    handles.push(...many);
    await caller.query("ROLLBACK");
    for (const handle of handles) expect(await codeOf(ferry.status(handle))).toBe(ErrorCode.NotFound);
    expect((await ferry.stats()).launched).toBe(0);
  });

  it("without tx the launch is autonomous: it survives the caller's rollback", async () => {
    await caller.query("BEGIN");
    await caller.query("INSERT INTO orders VALUES (5)");
    const handle = await ferry.launch("audit.log", { order: 5 });
    await caller.query("ROLLBACK");
    // The pitfall pg_background's SECURITY.md warns about: the order is gone, its audit job is not.
    expect((await caller.query("SELECT count(*)::int AS n FROM orders")).rows[0].n).toBe(0);
    expect((await ferry.status(handle)).state).toBe("queued");
  });

  it("refuses a tx that is not a client inside an open transaction", async () => {
    expect(await codeOf(ferry.launch("order.mail", {}, { tx: caller }))).toBe(ErrorCode.InvalidArgument);
    const pool = new pg.Pool({ connectionString: PG_URL });
    try {
      expect(await codeOf(ferry.launch("order.mail", {}, { tx: pool }))).toBe(ErrorCode.InvalidArgument);
    } finally {
      await pool.end();
    }
    expect(await codeOf(ferry.launch("order.mail", {}, { tx: { not: "a client" } }))).toBe(
      ErrorCode.InvalidArgument,
    );
    expect((await ferry.stats()).launched).toBe(0);
  });

  it("a failed launch inside tx leaves the caller's transaction usable", async () => {
    await caller.query("BEGIN");
    await caller.query("INSERT INTO orders VALUES (6)");
    const parent = { id: "01900000-0000-7000-8000-000000000001", cookie: "AAAAAAAAAAAAAAAAAAAAAA" };
    const failed = await codeOf(ferry.launch("order.mail", {}, { tx: caller, dependsOn: [parent] }));
    expect(failed).not.toBe("resolved");
    await caller.query("INSERT INTO orders VALUES (7)");
    await caller.query("COMMIT");
    expect((await caller.query("SELECT count(*)::int AS n FROM orders")).rows[0].n).toBe(2);
  });
});
