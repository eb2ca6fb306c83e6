/**
 * A uniqueKey is its user's own: bob launching with a key alice holds gets a job of his own (not
 * hers, not her id), alice launching after bob still gets hers, and nothing bob is answered names
 * alice's job.
 */

import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTwoUsers, type TwoUsers } from "./two-users.js";

describe("uniqueKey through the daemon, with two users", () => {
  let users: TwoUsers;
  beforeAll(async () => {
    users = await startTwoUsers();
  }, 60_000);
  afterAll(() => users?.daemon.stop());

  it("gives each user a job of their own, and each its own job back", async () => {
    const { alice, bob } = users;
    // On a queue no worker takes: the jobs stay unfinished, so their keys stay held.
    const options = { queue: "parked", uniqueKey: "welcome:42" };
    const aliceFirst = (await alice.jobs.launch({ handler: "ferry.echo", options })).handle!;
    const bobFirst = (await bob.jobs.launch({ handler: "ferry.echo", options })).handle!;
    const aliceAgain = (await alice.jobs.launch({ handler: "ferry.echo", options })).handle!;
    const bobAgain = (await bob.jobs.launch({ handler: "ferry.echo", options })).handle!;

    expect(bobFirst.id).not.toBe(aliceFirst.id);
    expect(bobFirst.cookie).not.toBe("");
    expect([aliceAgain.id, aliceAgain.cookie]).toEqual([aliceFirst.id, ""]);
    expect([bobAgain.id, bobAgain.cookie]).toEqual([bobFirst.id, ""]);
    // Both jobs are stored, each reached by its own owner's handle.
    expect((await alice.jobs.status({ handle: aliceFirst })).state).toBe("queued");
    expect((await bob.jobs.status({ handle: bobFirst })).state).toBe("queued");

    // LaunchMany and Submit keep to the caller's scope too.
    const many = await bob.jobs.launchMany({ jobs: [{ handler: "ferry.echo", options }] });
    expect(many.handles.map((h) => h.id)).toEqual([bobFirst.id]);
    const submitOptions = { queue: "parked", uniqueKey: "audit" };
    const aliceSubmit = await alice.jobs.submit({ handler: "ferry.echo", options: submitOptions });
    const bobSubmit = await bob.jobs.submit({ handler: "ferry.echo", options: submitOptions });
    expect(bobSubmit.id).not.toBe(aliceSubmit.id);

    // Nothing bob was answered names a job of alice's.
    const bobs = await bob.jobs.list({});
    const answered = JSON.stringify([bobFirst, bobAgain, many, bobSubmit, bobs]);
    for (const id of [aliceFirst.id, aliceSubmit.id]) expect(answered).not.toContain(id);
    expect(bobs.jobs.map((j) => j.id).sort()).toEqual([bobFirst.id, bobSubmit.id].sort());
    // Alice's key let go when her job ends; bob's still holds his.
    await alice.jobs.cancel({ handle: aliceFirst });
    const aliceThird = (await alice.jobs.launch({ handler: "ferry.echo", options })).handle!;
    expect(aliceThird.id).not.toBe(aliceFirst.id);
    expect(aliceThird.cookie).not.toBe("");
    expect((await bob.jobs.launch({ handler: "ferry.echo", options })).handle!.id).toBe(bobFirst.id);
  });

  it("refuses a uniqueKey on a schedule, whoever asks", async () => {
    for (const user of [users.alice, users.bob]) {
      const refused = await user.schedules
        .create({
          name: `${user.name}.hourly`,
          handler: "ferry.echo",
          every: "1h",
          options: { uniqueKey: "k" },
        })
        .catch((error: unknown) => ConnectError.from(error));
      expect(refused).toBeInstanceOf(ConnectError);
      expect([
        (refused as ConnectError).metadata.get("ferry-error-code"),
        (refused as ConnectError).rawMessage,
      ]).toEqual(["FERRY_INVALID_ARGUMENT", "schedules do not take the uniqueKey option"]);
    }
  });
});
