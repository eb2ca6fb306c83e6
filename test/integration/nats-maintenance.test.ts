/**
 * Rescue and pruning on the NATS store read only what some process says it holds (held.<origin>)
 * and what the expiry notes say is due (exp.*), never every record: checked by counting record
 * reads with hundreds of unrelated records around. Two store instances on one prefix stand for two
 * processes. Against the machine's nats-server.
 */
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_POLICY } from "../../src/core/options.js";
import { Ferry } from "../../src/index.js";
import { Dispatcher } from "../../src/store/nats/dispatch.js";
import { JobRepo } from "../../src/store/nats/job-repo.js";
import { listKeys } from "../../src/store/nats/kv-keys.js";
import { natsNames } from "../../src/store/nats/names.js";
import { openNatsStore } from "../../src/store/nats/open.js";
import type { Store } from "../../src/store/store.js";
import { freshNatsPrefix, NATS_URL } from "../conformance/stores.js";
import { plainNewJob } from "../helpers/new-job.js";
import { sleep } from "../helpers/temp.js";

const UNRELATED = 300;

describe("NATS maintenance without scanning", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function twoProcesses() {
    const { url, prefix, drop } = freshNatsPrefix();
    cleanups.push(drop);
    const a = await openNatsStore(url);
    const b = await openNatsStore(url);
    const ferry = await Ferry.open({ store: a });
    cleanups.push(async () => {
      await ferry.close();
      await a.close();
      await b.close();
    });
    // Records that no rescue or prune should ever read: queued jobs of a queue nobody works.
    await ferry.launchMany(
      Array.from({ length: UNRELATED }, () => ({
        handler: "demo.idle",
        payload: {},
        options: { queue: "elsewhere" },
      })),
    );
    return { ferry, a, b, prefix };
  }

  /** A client of its own, as another process has. */
  async function connectTo() {
    const nc = await connect({ servers: new URL(NATS_URL).host });
    cleanups.push(() => nc.close());
    return nc;
  }

  /** The meta bucket, as another client sees it. */
  async function metaOf(prefix: string) {
    return new Kvm(await connectTo()).open(natsNames(prefix).metaBucket);
  }

  function countReads(): { readonly calls: number } {
    const spy = vi.spyOn(JobRepo.prototype, "read");
    spy.mockClear(); // spyOn answers the same spy when asked again
    return {
      get calls() {
        return spy.mock.calls.length;
      },
    };
  }

  const claimOne = (store: Store, workerId: string, leaseMs: number) =>
    store.claim({ workerId, queues: ["default"], handlers: ["demo.job"], limit: 1, leaseMs });

  it("rescues a job another process holds, found through its held list, and forgets a silent list", async () => {
    const { ferry, a, b, prefix } = await twoProcesses();
    const h = await ferry.launch("demo.job", {}, { attempts: 3, backoff: { type: "fixed", base: 0 } });
    const claimed = await claimOne(b, "w-b", 200);
    expect(claimed.jobs.map((j) => j.id)).toEqual([h.id]);
    await sleep(300);

    const reads = countReads();
    const rescued = await a.rescueExpired(100);
    expect(rescued.requeued).toBe(1);
    expect((await ferry.status(h)).state).toBe("queued");
    expect(reads.calls, "records read by one rescue").toBeLessThan(10);

    // b wrote its list 300 ms ago, past the 100 ms worker TTL given: the list is dropped. a's own
    // list (written around its launch) names nothing now.
    const meta = await metaOf(prefix);
    const lists = await listKeys(meta, "held.*");
    const named = await Promise.all(
      lists.map(async (key) => {
        const entry = await meta.get(key);
        return entry?.operation === "PUT" ? entry.json<{ ids: string[] }>().ids : [];
      }),
    );
    expect(named.flat()).toEqual([]);
  });

  it("prunes finished jobs from the expiry notes another process wrote, and only those", async () => {
    const { ferry, a, b } = await twoProcesses();
    const worker = ferry.worker({
      maintenance: false,
      pollInterval: "20ms",
      handlers: { "demo.job": async () => 1 },
    });
    await worker.start();
    const short = await ferry.launchMany(
      Array.from({ length: 40 }, () => ({
        handler: "demo.job",
        payload: {},
        options: { resultTtl: "50ms" },
      })),
    );
    const long = await ferry.launch("demo.job", {}, { resultTtl: "1h" });
    await ferry.drain([...short, long], { timeout: "20s" });
    await worker.stop();
    await sleep(100);

    const reads = countReads();
    // b never ran a job: it knows of them only through a's notes.
    expect(await b.pruneExpired(1_000)).toBe(short.length);
    expect(reads.calls, "records read by one prune").toBeLessThanOrEqual(short.length + 5);
    await expect(ferry.status(short[0]!)).rejects.toMatchObject({ code: "FERRY_NOT_FOUND" });
    expect((await ferry.result(long)).value).toBe(1);
    // The notes are gone with them: a second prune reads nothing.
    const again = countReads();
    expect(await a.pruneExpired(1_000)).toBe(0);
    expect(again.calls).toBe(0);
  });

  it("prunes, once an hour, what no note names (a note lost with its process)", async () => {
    const { ferry, a, prefix } = await twoProcesses();
    const worker = ferry.worker({
      maintenance: false,
      pollInterval: "20ms",
      handlers: { "demo.job": async () => 1 },
    });
    await worker.start();
    const h = await ferry.launch("demo.job", {}, { resultTtl: "50ms" });
    await ferry.drain([h], { timeout: "20s" });
    await worker.stop();
    await sleep(100);
    // The note is lost; the sweep clock (started by the first look) says an hour has not passed.
    const meta = await metaOf(prefix);
    for (const key of await listKeys(meta, "exp.>")) await meta.purge(key);
    expect(await a.pruneExpired(1_000)).toBe(0);
    expect((await ferry.status(h)).state).toBe("completed");
    // An hour later (the clock moved back by hand), one process sweeps every record.
    await meta.put("sweep.prune", JSON.stringify({ at: Date.now() - 3_700_000 }));
    expect(await a.pruneExpired(1_000)).toBe(1);
    await expect(ferry.status(h)).rejects.toMatchObject({ code: "FERRY_NOT_FOUND" });
    expect(await a.pruneExpired(1_000)).toBe(0);
  });

  it("finds a job launched already claimed (direct dispatch, no message) through the held list, and runs it again", async () => {
    const { a, b } = await twoProcesses();
    const job = plainNewJob("demo.job", "default", {
      maxAttempts: 3,
      policy: { ...DEFAULT_POLICY, backoff: { type: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } },
    });
    const [launched] = await a.enqueue([job], { dispatch: { workerId: "w-a", leaseMs: 200 } });
    expect(launched?.claimed?.id).toBe(job.id);
    expect((await b.getJob(job.id))?.state).toBe("running");
    // a's worker goes silent; the job has no dispatch message, so only a's held list names it.
    await sleep(300);
    const reads = countReads();
    expect((await b.rescueExpired(60_000)).requeued).toBe(1);
    expect(reads.calls).toBeLessThan(10);
    // The rescue re-dispatched it: a claimer on b takes it, as attempt 2.
    const again = await claimOne(b, "w-b", 30_000);
    expect(again.jobs.map((j) => [j.id, j.attempt])).toEqual([[job.id, 2]]);
  });

  it("dispatches a job whose process died between its record and its dispatch, named by that process's held list", async () => {
    const { a, b } = await twoProcesses();
    // a's dispatch never goes out (the process "dies" there); b's, later, does.
    const publish = vi
      .spyOn(Dispatcher.prototype, "publishDispatch")
      .mockImplementationOnce(() => new Promise<void>(() => {}));
    const job = plainNewJob("demo.job", "default");
    void a.enqueue([job]);
    await vi.waitFor(async () => expect((await b.getJob(job.id))?.state).toBe("queued"));
    expect((await claimOne(b, "w-b", 30_000)).jobs).toEqual([]);
    await sleep(300);
    await b.rescueExpired(100);
    expect(publish).toHaveBeenCalledTimes(2);
    const claimed = await claimOne(b, "w-b", 30_000);
    expect(claimed.jobs.map((j) => [j.id, j.attempt])).toEqual([[job.id, 1]]);
  });

  it("lists a page, by queue or owner, reading about a page of records, not the history", async () => {
    const { ferry, a, prefix } = await twoProcesses();
    const mine = await ferry.launchMany(
      Array.from({ length: 5 }, (_, i) => ({
        handler: "demo.job",
        payload: { i },
        options: { owner: "ann" },
      })),
    );
    const reads = countReads();
    const page = await a.listJobs({ queue: "default", limit: 3 });
    expect(page.map((j) => j.id)).toEqual(mine.slice(0, 3).map((h) => h.id));
    const next = await a.listJobs({ owner: "ann", afterId: page[2]!.id, limit: 10 });
    expect(next.map((j) => j.id)).toEqual(mine.slice(3).map((h) => h.id));
    const all = await a.listJobs({ limit: 4 });
    expect(all).toHaveLength(4);
    // 3 + 2 + 4 records in the pages; the 300 jobs of the other queue are never read for the first two.
    expect(reads.calls, "records read by three pages").toBeLessThanOrEqual(12);
    // A purged job leaves the index with its record: listed no more, and no key left behind.
    expect((await a.requestCancel(mine[0]!.id, 0)).state).toBe("cancelled");
    await sleep(5);
    expect(await a.purge({ olderThanMs: 0 })).toBe(1);
    expect((await a.listJobs({ owner: "ann", limit: 10 })).map((j) => j.id)).toEqual(
      mine.slice(1).map((h) => h.id),
    );
    const index = await new Kvm(await connectTo()).open(natsNames(prefix).indexBucket);
    expect(await listKeys(index, "default.*.*")).toHaveLength(4);
  });
});
