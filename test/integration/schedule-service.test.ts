/**
 * `ferry.v1.ScheduleService` (src/daemon/schedule-service.ts) through Connect's in-memory
 * transport on a real SQLite store: schedules belong to their maker, fire jobs owned by it, and
 * another user's schedule is out of reach.
 */
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { scheduleService } from "../../src/daemon/schedule-service.js";
import { ScheduleService } from "../../src/gen/ferry/v1/schedules_pb.js";
import { as, callerOf } from "../helpers/fake-callers.js";
import { cleanupsAfterEach, failure, inMemoryClient, sqliteFerry } from "../helpers/service-harness.js";
import { collect, eventually } from "../helpers/temp.js";

describe("ScheduleService", () => {
  const cleanups = cleanupsAfterEach();

  async function setup() {
    const ferry = await sqliteFerry(cleanups);
    const client = inMemoryClient(
      ScheduleService,
      scheduleService(ferry, { callerOf, restrictedHandlers: new Set(["sql.exec"]) }),
    );
    return { ferry, client, as };
  }

  it("makes a schedule that fires jobs owned by its maker", async () => {
    const { ferry, client, as } = await setup();
    const made = await client.create(
      {
        name: "ann.tick",
        handler: "demo.tick",
        every: "1s",
        repeat: 2,
        payload: fromJson(ValueSchema, { n: 1 }),
      },
      as("ann"),
    );
    expect(made).toMatchObject({
      name: "ann.tick",
      handler: "demo.tick",
      everyMs: 1000n,
      repeatLeft: 2,
      paused: false,
    });
    expect(made.nextRunAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const worker = ferry.worker({ pollInterval: "50ms", handlers: { "demo.tick": async (p: unknown) => p } });
    await worker.start();
    cleanups.push(() => worker.stop());
    const fired = await eventually(
      async () => {
        const rows = await collect(ferry.list({ handler: "demo.tick" }));
        return rows.length >= 1 ? rows : undefined;
      },
      "the schedule to fire",
      15_000,
    );
    expect(fired?.[0]?.owner).toBe("ann");
  }, 30_000);

  it("keeps each user's schedules to that user; viewers list, admins reach all", async () => {
    const { client, as } = await setup();
    const anns = await client.create({ name: "ann.daily", cron: "0 6 * * *", tz: "Europe/Paris" }, as("ann"));
    expect(anns).toMatchObject({ cron: "0 6 * * *", tz: "Europe/Paris", handler: "ann.daily" });
    await client.create({ name: "bob.hourly", cron: "0 * * * *" }, as("bob"));

    expect((await client.list({}, as("ann"))).schedules.map((s) => s.name)).toEqual(["ann.daily"]);
    expect((await client.list({}, as("vic"))).schedules.map((s) => s.name).sort()).toEqual([
      "ann.daily",
      "bob.hourly",
    ]);
    expect((await client.list({}, as("root"))).schedules).toHaveLength(2);

    // Bob cannot reach Ann's schedule by id, nor take its name over.
    expect(await failure(client.pause({ id: anns.id }, as("bob")))).toBe("NotFound/FERRY_NOT_FOUND");
    expect(await failure(client.cancel({ id: anns.id }, as("bob")))).toBe("NotFound/FERRY_NOT_FOUND");
    expect(await failure(client.create({ name: "ann.daily", every: "1m" }, as("bob")))).toBe(
      "PermissionDenied/FERRY_PERMISSION_DENIED",
    );
    expect(await failure(client.pause({ id: anns.id }, as("vic")))).toBe(
      "PermissionDenied/FERRY_PERMISSION_DENIED",
    );
    expect(await failure(client.create({ name: "vic.x", every: "1m" }, as("vic")))).toBe(
      "PermissionDenied/FERRY_PERMISSION_DENIED",
    );

    // Ann changes her own; an admin changes anyone's.
    expect((await client.pause({ id: anns.id }, as("ann"))).paused).toBe(true);
    expect((await client.resume({ id: anns.id }, as("root"))).paused).toBe(false);
    const updated = await client.update({ id: anns.id, every: "15m", repeat: 3 }, as("ann"));
    expect(updated).toMatchObject({ everyMs: 900_000n, repeatLeft: 3 });
    expect(updated.cron).toBeUndefined();
    await client.cancel({ id: anns.id }, as("ann"));
    expect((await client.list({}, as("root"))).schedules.map((s) => s.name)).toEqual(["bob.hourly"]);
  });

  it("refuses bad schedules and restricted handlers with clear codes", async () => {
    const { client, as } = await setup();
    const invalid = "InvalidArgument/FERRY_INVALID_ARGUMENT";
    expect(await failure(client.create({ name: "x.y" }, as("ann")))).toBe(invalid);
    expect(await failure(client.create({ name: "x.y", cron: "* * *", every: "1m" }, as("ann")))).toBe(
      invalid,
    );
    expect(await failure(client.create({ name: "x.y", cron: "not a cron" }, as("ann")))).toBe(invalid);
    expect(await failure(client.create({ name: "x.y", every: "10ms" }, as("ann")))).toBe(invalid);
    expect(await failure(client.create({ name: "../etc/passwd", every: "1m" }, as("ann")))).toBe(invalid);
    expect(
      await failure(client.create({ name: "x.y", every: "1m", options: { delay: "5m" } }, as("ann"))),
    ).toBe(invalid);
    expect(await failure(client.create({ name: "q", handler: "sql.exec", every: "1m" }, as("ann")))).toBe(
      "PermissionDenied/FERRY_PERMISSION_DENIED",
    );
    expect(await failure(client.update({ id: "nope", every: "1m" }, as("root")))).toBe(
      "NotFound/FERRY_NOT_FOUND",
    );
    expect(await failure(client.list({}, as("nobody")))).toBe("Unauthenticated/FERRY_UNAUTHENTICATED");
  });
});
