/**
 * `LaunchEach` judged as hostile callers would use it, through the real JobService over Connect's
 * in-memory transport: a batch reveals and allows no more than the same Launches one by one
 * (rights, another user's parents and unique keys, quotas per job), one call cannot make the
 * daemon read 100,000 parents, and a store that fails while counting a user's jobs leaves that
 * user's quota as it was.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it, vi } from "vitest";
import { jobService } from "../../src/daemon/job-service.js";
import { LaunchQuotas } from "../../src/daemon/quotas.js";
import {
  JobService,
  type LaunchEachItemSchema,
  type LaunchRequestSchema,
} from "../../src/gen/ferry/v1/jobs_pb.js";
import { ErrorCode, type Ferry, FerryError } from "../../src/index.js";
import { as, callerOf } from "../helpers/fake-callers.js";
import { cleanupsAfterEach, failure, inMemoryClient, sqliteFerry } from "../helpers/service-harness.js";

type Item = MessageInitShape<typeof LaunchEachItemSchema>;
type Answer = { readonly ok: string } | { readonly code: string; readonly message: string };

describe("LaunchEach against hostile callers", () => {
  const cleanups = cleanupsAfterEach();

  async function setup(quotas?: (ferry: Ferry) => LaunchQuotas) {
    const ferry = await sqliteFerry(cleanups);
    const client = inMemoryClient(
      JobService,
      jobService(ferry, {
        callerOf,
        restrictedHandlers: new Set(["demo.restricted"]),
        ...(quotas === undefined ? {} : { quotas: quotas(ferry) }),
      }),
    );
    /** Each job's answer: its id when launched, else its refusal. */
    const each = async (user: string, jobs: Item[]): Promise<Answer[]> => {
      const { results } = await client.launchEach({ jobs }, as(user));
      return results.map(({ result }) =>
        result.case === "launched"
          ? { ok: result.value.handle?.id ?? "" }
          : { code: result.value?.code ?? "", message: result.value?.message ?? "" },
      );
    };
    /** What Launch alone answers for the same job. */
    const alone = async (user: string, job: MessageInitShape<typeof LaunchRequestSchema>) => {
      try {
        return { ok: (await client.launch(job, as(user))).handle?.id ?? "" };
      } catch (error) {
        const e = error as { metadata: Headers; rawMessage: string };
        return { code: e.metadata.get("ferry-error-code") ?? "", message: e.rawMessage };
      }
    };
    const stored = async () => {
      let n = 0;
      for await (const _ of ferry.list({})) n += 1;
      return n;
    };
    return { ferry, client, each, alone, stored };
  }

  it("refuses a restricted handler or a viewer's job as Launch does, and stores the rest", async () => {
    const { each, alone, stored } = await setup();
    const restricted = { handler: "demo.restricted" };
    const answers = await each("bob", [
      { job: { handler: "demo.echo" } },
      { job: restricted },
      { job: { handler: "demo.echo" }, submit: true },
    ]);
    expect(answers[1]).toEqual(await alone("bob", restricted));
    expect(answers[1]).toMatchObject({ code: ErrorCode.PermissionDenied });
    expect([answers[0], answers[2]]).toEqual([{ ok: expect.any(String) }, { ok: expect.any(String) }]);
    expect(await stored()).toBe(2);

    const viewer = await each("vic", [{ job: { handler: "demo.echo" } }, { job: restricted }]);
    const refusal = await alone("vic", { handler: "demo.echo" });
    expect(refusal).toMatchObject({ code: ErrorCode.PermissionDenied });
    expect(viewer).toEqual([refusal, refusal]);
    expect(await stored()).toBe(2);
  });

  it("answers another user's parent exactly as an unknown one, and links nothing to it", async () => {
    const { ferry, each, alone } = await setup();
    const parent = (await each("ann", [{ job: { handler: "demo.echo", options: { queue: "parked" } } }]))[0]!;
    expect(parent).toEqual({ ok: expect.any(String) });
    const annHandle = await ferry.launch("demo.echo", {}, { owner: "ann", queue: "parked" });
    const unknown = { id: "01900000-0000-7000-8000-000000000001", cookie: "A".repeat(22) };
    const wrongCookie = { id: annHandle.id, cookie: "B".repeat(22) };
    const answers = await each("bob", [
      { job: { handler: "demo.echo", options: { dependsOn: [annHandle] } } },
      { job: { handler: "demo.echo", options: { dependsOn: [unknown] } } },
      { job: { handler: "demo.echo", options: { dependsOn: [wrongCookie] } } },
      { job: { handler: "demo.echo" } },
    ]);
    const noSuchJob = { code: ErrorCode.NotFound, message: "no such job" };
    expect(answers.slice(0, 3)).toEqual([noSuchJob, noSuchJob, noSuchJob]);
    expect(await alone("bob", { handler: "demo.echo", options: { dependsOn: [annHandle] } })).toEqual(
      noSuchJob,
    );
    expect(answers[3]).toEqual({ ok: expect.any(String) });
    // Only the job without parents was stored.
    let bobs = 0;
    for await (const _ of ferry.list({ owner: "bob" })) bobs += 1;
    expect(bobs).toBe(1);
  });

  it("keeps unique keys in the caller's scope, inside one batch too", async () => {
    const { each } = await setup();
    const [annJob] = await each("ann", [
      { job: { handler: "demo.echo", options: { queue: "parked", uniqueKey: "k" } } },
    ]);
    const keyed = { job: { handler: "demo.echo", options: { queue: "parked", uniqueKey: "k" } } };
    const [first, second] = await each("bob", [keyed, keyed]);
    expect(first).toEqual({ ok: expect.any(String) });
    expect(first).not.toEqual(annJob);
    // The second is bob's first again, never ann's.
    expect(second).toEqual(first);
  });

  it("refuses an item with no job alone", async () => {
    const { each } = await setup();
    const answers = await each("bob", [{}, { job: { handler: "demo.echo" } }]);
    expect(answers[0]).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(answers[1]).toEqual({ ok: expect.any(String) });
  });

  it("refuses a call naming over 1,000 parents in all before reading any", async () => {
    const { ferry, client, each } = await setup();
    const parent = await ferry.launch("demo.echo", {}, { owner: "bob", queue: "parked" });
    const withParents = (n: number): Item => ({
      job: { handler: "demo.echo", options: { queue: "parked", dependsOn: Array(n).fill(parent) } },
    });
    const getJob = vi.spyOn(ferry.store, "getJob");
    // 1,000 jobs × 100 parents would be 100,000 store reads in one call.
    const jobs = Array.from({ length: 1000 }, () => withParents(100));
    expect(await failure(client.launchEach({ jobs }, as("bob")))).toBe(
      "InvalidArgument/FERRY_INVALID_ARGUMENT",
    );
    expect(getJob).not.toHaveBeenCalled();
    // Ten jobs of 100 parents (a Launch's cap) are within it; a job over 100 is refused alone.
    const answers = await each("bob", [
      ...Array.from({ length: 10 }, () => withParents(100)),
      withParents(101),
    ]);
    expect(answers.slice(0, 10).every((a) => "ok" in a)).toBe(true);
    expect(answers[10]).toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: expect.stringMatching(/100/),
    });
  });

  it("never admits past the quota, and a refused job gives its place back", async () => {
    const { ferry, each, alone } = await setup(
      (f) =>
        new LaunchQuotas({ launchesPerMinute: 3, maxActive: 100 }, (owner, limit) =>
          f.store.countActive(owner, limit),
        ),
    );
    const unknown = { id: "01900000-0000-7000-8000-000000000002", cookie: "A".repeat(22) };
    const ok = { job: { handler: "demo.echo", options: { queue: "parked" } } };
    const answers = await each("bob", [
      { job: { handler: "demo.echo", options: { queue: "not a queue!" } } },
      { job: { handler: "demo.echo", options: { queue: "parked", dependsOn: [unknown] } } },
      ok,
      ok,
      ok,
    ]);
    // Admitted in order, before the library checks them: the two bad jobs held places until they
    // were refused, so the batch errs towards refusing (never past the quota).
    expect(answers.map((a) => ("ok" in a ? "ok" : a.code))).toEqual([
      ErrorCode.InvalidArgument,
      ErrorCode.NotFound,
      "ok",
      ErrorCode.QuotaExceeded,
      ErrorCode.QuotaExceeded,
    ]);
    // Both places were given back: two more launches fit in the minute, and then none.
    expect(await alone("bob", ok.job)).toEqual({ ok: expect.any(String) });
    expect(await alone("bob", ok.job)).toEqual({ ok: expect.any(String) });
    expect(await alone("bob", ok.job)).toMatchObject({ code: ErrorCode.QuotaExceeded });
    let stored = 0;
    for await (const _ of ferry.list({ owner: "bob" })) stored += 1;
    expect(stored).toBe(3);
  });

  it("gives back the places of jobs admitted before the store failed to count the user's jobs", async () => {
    let reads = 0;
    let now = 0;
    const { each, alone } = await setup(
      (f) =>
        new LaunchQuotas(
          { launchesPerMinute: 1000, maxActive: 2 },
          async (owner, limit) => {
            reads += 1;
            if (reads === 2) {
              throw new FerryError(ErrorCode.StoreUnavailable, "the store is unavailable");
            }
            return f.store.countActive(owner, limit);
          },
          // Every admission reads the count again, so the batch's second one meets the failure.
          { now: () => (now += 10), refreshMs: 0 },
        ),
    );
    const ok = { job: { handler: "demo.echo", options: { queue: "parked" } } };
    // The first admission reads the count; the second's read fails, and so does the call.
    expect(await failure(each("bob", [ok, ok]))).toBe("Unavailable/FERRY_STORE_UNAVAILABLE");
    expect(reads).toBe(2);
    // Nothing was stored, so bob may still have 2 unfinished jobs.
    expect(await alone("bob", ok.job)).toEqual({ ok: expect.any(String) });
    expect(await alone("bob", ok.job)).toEqual({ ok: expect.any(String) });
    expect(await alone("bob", ok.job)).toMatchObject({ code: ErrorCode.QuotaExceeded });
  });
});
