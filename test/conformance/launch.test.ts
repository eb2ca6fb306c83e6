import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ErrorCode, FerryError } from "../../src/index.js";
import { plainNewJob } from "../helpers/new-job.js";
import { useSubject } from "./setup.js";
import { LIBRARY_SUBJECTS, SUBJECTS } from "./stores.js";

const codeOf = async (work: Promise<unknown>): Promise<string> => {
  try {
    await work;
  } catch (error) {
    if (error instanceof FerryError) return error.code;
    throw error;
  }
  return "no error";
};

describe.each(SUBJECTS)("launching on $name", (subject) => {
  const t = useSubject(subject);

  it("answers a handle with a sortable id and a 128-bit cookie, and stores only the cookie's hash", async () => {
    const a = await t.api.launch("demo.echo", { n: 1 });
    const b = await t.api.launch("demo.echo", { n: 2 });
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.id < b.id).toBe(true);
    expect(Buffer.from(a.cookie, "base64url")).toHaveLength(16);
    const record = await t.ferry.store.getJob(a.id);
    const stored = Buffer.from(record!.cookieHash!);
    expect(stored.equals(createHash("sha256").update(a.cookie).digest())).toBe(true);
    expect(JSON.stringify(record)).not.toContain(a.cookie);
  });

  it("answers a wrong cookie exactly like an unknown id", async () => {
    const h = await t.api.launch("demo.echo", {});
    const other = await t.api.launch("demo.echo", {});
    const wrongCookie = await t.api.status({ id: h.id, cookie: other.cookie }).catch((e: FerryError) => e);
    const unknownId = await t.api
      .status({ id: "01900000-0000-7000-8000-000000000000", cookie: h.cookie })
      .catch((e: FerryError) => e);
    const malformed = await t.api.status({ id: h.id, cookie: "short" }).catch((e: FerryError) => e);
    const noCookie = await t.api.status({ id: h.id, cookie: "" }).catch((e: FerryError) => e);
    const noId = await t.api.status({ id: "", cookie: h.cookie }).catch((e: FerryError) => e);
    const notText = await t.api.status({ id: 1, cookie: null } as never).catch((e: FerryError) => e);
    for (const error of [wrongCookie, unknownId, malformed, noCookie, noId, notText]) {
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe(ErrorCode.NotFound);
      expect((error as FerryError).message).toBe("no such job");
    }
    // One at a time: a call made up front could reject before anything awaits it.
    for (const call of [
      () => t.api.result({ id: h.id, cookie: other.cookie }),
      () => t.api.cancel({ id: h.id, cookie: other.cookie }),
      () => t.api.detach({ id: h.id, cookie: other.cookie }),
      () => t.api.wait({ id: h.id, cookie: other.cookie }, { timeout: "50ms" }),
    ]) {
      expect(await codeOf(call())).toBe(ErrorCode.NotFound);
    }
    // The real handle still works, and the probing changed nothing.
    expect((await t.api.status(h)).state).toBe("queued");
  });

  it("reports status without consuming anything", async () => {
    const h = await t.api.launch("demo.echo", { x: 1 }, { label: "first", priority: 5, attempts: 4 });
    const s = await t.api.status(h);
    expect(s).toMatchObject({
      id: h.id,
      handler: "demo.echo",
      queue: "default",
      state: "queued",
      attempts: 0,
      maxAttempts: 4,
      label: "first",
      priority: 5,
      consumed: false,
      startedAt: null,
    });
    expect(s.launchedAt).toBeInstanceOf(Date);
  });

  it("submit stores a job that no handle reaches", async () => {
    const { id, ...rest } = await t.api.submit("audit.log", { action: "login" });
    expect(rest).toEqual({ deduplicated: false });
    const record = await t.ferry.store.getJob(id);
    expect(record?.cookieHash).toBeNull();
    expect(record?.detached).toBe(true);
  });

  it("launchMany stores all jobs in one step, or none", async () => {
    const handles = await t.api.launchMany([
      { handler: "demo.a", payload: 1 },
      { handler: "demo.b", payload: 2, options: { queue: "other" } },
    ]);
    expect(handles).toHaveLength(2);
    expect((await t.api.status(handles[1]!)).queue).toBe("other");

    const before = (await t.api.stats()).launched;
    expect(
      await codeOf(
        t.api.launchMany([
          { handler: "demo.a", payload: 1 },
          { handler: "demo.a", payload: 2, options: { attempts: 0 } },
        ]),
      ),
    ).toBe(ErrorCode.InvalidArgument);
    expect((await t.api.stats()).launched).toBe(before);
  });

  it("dedupes by uniqueKey while the first job is unfinished, and not after", async () => {
    const first = await t.api.launch("welcome.send", { user: 42 }, { uniqueKey: "welcome:42" });
    const again = await t.api.launch("welcome.send", { user: 42 }, { uniqueKey: "welcome:42" });
    expect(first.deduplicated).toBe(false);
    expect(again).toEqual({ id: first.id, cookie: "", deduplicated: true });
    // The duplicate's handle reaches nothing: only the first launcher holds the job.
    expect(await codeOf(t.api.status(again))).toBe(ErrorCode.NotFound);
    await t.api.cancel(first);
    const third = await t.api.launch("welcome.send", { user: 42 }, { uniqueKey: "welcome:42" });
    expect(third.deduplicated).toBe(false);
    expect(third.id).not.toBe(first.id);
  });

  it("keeps uniqueness under concurrent launches from two clients", async () => {
    const other = await t.otherApi();
    const launches = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? t.api : other).launch("race.job", { i }, { uniqueKey: "race" }),
      ),
    );
    expect(launches.filter((h) => !h.deduplicated)).toHaveLength(1);
    expect(new Set(launches.map((h) => h.id)).size).toBe(1);
  });

  it("refuses bad input with FERRY_INVALID_ARGUMENT and stores nothing", async () => {
    const before = (await t.api.stats()).launched;
    for (const handler of [
      "../etc/passwd",
      "data:text/javascript,1",
      "node:fs",
      "",
      "a/b",
      "x".repeat(300),
    ]) {
      expect(await codeOf(t.api.launch(handler, {}))).toBe(ErrorCode.InvalidArgument);
    }
    for (const options of [
      { queue: "no spaces" },
      { attempts: -1 },
      { priority: 1.5 },
      { delay: "soon" },
      { timeout: "0s" },
      { unknownOption: true },
      { backoff: { type: "linear" } },
    ]) {
      expect(await codeOf(t.api.launch("demo.ok", {}, options as never))).toBe(ErrorCode.InvalidArgument);
    }
    expect(await codeOf(t.api.launch("demo.ok", "x".repeat(2_000_000)))).toBe(ErrorCode.PayloadTooLarge);
    expect(await codeOf(t.api.launch("demo.ok", { f: () => 1 }))).toBe(ErrorCode.Serialization);
    expect(await codeOf(t.api.launch("demo.ok", { n: Number.NaN }))).toBe(ErrorCode.Serialization);
    expect((await t.api.stats()).launched).toBe(before);
  });

  it("schedules delayed jobs and reports them as scheduled until due", async () => {
    const later = await t.api.launch("demo.later", {}, { delay: "1h" });
    const at = await t.api.launch("demo.at", {}, { runAt: new Date(Date.now() + 60_000) });
    const past = await t.api.launch("demo.past", {}, { runAt: new Date(Date.now() - 1_000) });
    expect((await t.api.status(later)).state).toBe("scheduled");
    expect((await t.api.status(at)).state).toBe("scheduled");
    expect((await t.api.status(past)).state).toBe("queued");
    const status = await t.api.status(later);
    expect(status.runAt.getTime() - status.launchedAt.getTime()).toBeGreaterThanOrEqual(3_599_000);
  });
});

describe.each(LIBRARY_SUBJECTS)("launching into the store on $name", (subject) => {
  const t = useSubject(subject);

  it("rolls back every job of a batch when one fails inside the store's transaction", async () => {
    // A dependency that vanished: only a write straight to the store can name one.
    const parent = await t.ferry.launch("demo.parent", {});
    const before = (await t.ferry.stats()).launched;
    const job = (await t.ferry.store.getJob(parent.id))!;
    const base = { maxAttempts: 1, policy: job.policy, label: "atomic" };
    await expect(
      t.ferry.store.enqueue([
        plainNewJob("demo.a", "default", { ...base, id: "01900000-0000-7000-8000-00000000000a" }),
        plainNewJob("demo.a", "default", {
          ...base,
          id: "01900000-0000-7000-8000-00000000000b",
          dependsOn: ["01900000-0000-7000-8000-0000000000ff"],
        }),
      ]),
    ).rejects.toThrow();
    expect(await t.ferry.store.getJob("01900000-0000-7000-8000-00000000000a")).toBeUndefined();
    expect((await t.ferry.stats()).launched).toBe(before);
  });
});
