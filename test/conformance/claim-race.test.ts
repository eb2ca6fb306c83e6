/**
 * Claim races: 32 claimers on two Ferry instances (two connections or pools) go for ONE eligible
 * job while its owner cancels it and the rescuer runs (on a third instance), round after round. Every round: at most one
 * claimer gets the job per fence, a rescued holder's fence is dead before anyone else holds the
 * job (no overlapping runs), the job ends in a state the interleaving explains, and no error
 * (deadlock, serialization failure, busy database, anything) reaches a caller.
 */
import { describe, expect, it } from "vitest";
import type { Store } from "../../src/index.js";
import type { ClaimedJob } from "../../src/store/store.js";
import { sleep } from "../helpers/temp.js";
import { useStore } from "./setup.js";
import { STORES } from "./stores.js";

const ROUNDS = 50;
const CLAIMERS = 32;

const claim = (store: Store, workerId: string, leaseMs: number) =>
  store.claim({ workerId, queues: ["default"], handlers: ["demo.job"], limit: 1, leaseMs });

/** Starts `work` after `minMs` to `maxMs` ms, so each round interleaves differently. */
const jittered = async <T>(work: () => Promise<T>, maxMs = 2, minMs = 0): Promise<T> => {
  const ms = minMs + Math.floor(Math.random() * (maxMs - minMs + 1));
  if (ms > 0) await sleep(ms);
  return work();
};

describe.each(STORES)("claim races on $name", (store) => {
  const t = useStore(store);

  it(`${CLAIMERS} claimers, a cancel and the rescuer on one job, ${ROUNDS} rounds: one holder per fence, no errors`, async () => {
    // Claimers split over two instances; the owner (cancel) and the rescuer on a third, so they
    // don't queue behind the claimers for a pooled connection.
    const [other, owner] = [await t.shared(), await t.shared()];
    const stores = [t.ferry.store, other.store];
    const claimedFences = new Map<string, number[]>();
    const tally = { claimed: 0, rescuedThenClaimed: 0, cancelled: 0, untouched: 0 };

    for (let round = 0; round < ROUNDS; round++) {
      // Odd rounds: the job is held by a worker whose lease already ran out, so the rescuer
      // re-queues (or cancels) it while the claimers race for it.
      const expired = round % 2 === 1;
      const h = await t.ferry.launch(
        "demo.job",
        { round },
        { attempts: 100, backoff: { type: "fixed", base: 0 } },
      );
      let prior: ClaimedJob | undefined;
      if (expired) {
        prior = (await claim(stores[round % 2]!, `old-${round}`, 1)).jobs[0];
        expect(prior?.id).toBe(h.id);
        await sleep(5);
      }

      const calls: Promise<unknown>[] = [];
      const claims: Promise<{ worker: string; job: ClaimedJob | undefined }>[] = [];
      // Claims spread wider when the rescuer runs (some land after it re-queued the job), and
      // start a little late every fourth round (the cancel may get there first).
      const spread: [number, number] = expired ? [25, 0] : round % 4 === 0 ? [12, 2] : [4, 0];
      for (let i = 0; i < CLAIMERS; i++) {
        const worker = `c${round}-${i}`;
        claims.push(
          jittered(() => claim(stores[i % 2]!, worker, 30_000), ...spread).then((r) => ({
            worker,
            job: r.jobs[0],
          })),
        );
      }
      calls.push(...claims);
      calls.push(jittered(() => owner.cancel(h, { grace: round % 4 < 2 ? 0 : "10s" }), expired ? 20 : 0));
      calls.push(jittered(() => owner.store.rescueExpired(60_000)));
      const settled = await Promise.allSettled(calls);
      const errors = settled.filter((s) => s.status === "rejected").map((s) => s.reason as unknown);
      expect(errors, `round ${round}: errors reached callers`).toEqual([]);

      const winners = (await Promise.all(claims)).filter((c) => c.job !== undefined);
      expect(
        winners.map((w) => w.job!.id).filter((id) => id !== h.id),
        "only this round's job is eligible",
      ).toEqual([]);
      // Nothing can take the job from a fresh 30 s lease: at most one claimer per round.
      expect(winners.length, `round ${round}: claimers that got the job`).toBeLessThanOrEqual(1);
      const fences = claimedFences.get(h.id) ?? (prior === undefined ? [] : [prior.fence]);
      for (const w of winners) fences.push(w.job!.fence);
      claimedFences.set(h.id, fences);
      expect(new Set(fences).size, `round ${round}: a fence was handed out twice`).toBe(fences.length);

      const record = (await t.ferry.store.getJob(h.id))!;
      const winner = winners[0];
      if (winner !== undefined) {
        // The winner holds the job now, under a fence newer than any earlier holder's.
        expect(record).toMatchObject({ state: "running", fence: winner.job!.fence, workerId: winner.worker });
        if (prior !== undefined) {
          expect(winner.job!.fence).toBeGreaterThan(prior.fence);
          expect(winner.job!.attempt).toBe(2);
          // The rescued holder can no longer write: its run is over before the winner's began.
          expect(
            await stores[0]!.finish([{ kind: "completed", id: h.id, fence: prior.fence, result: null }]),
          ).toEqual([false]);
          tally.rescuedThenClaimed += 1;
        } else {
          tally.claimed += 1;
        }
        expect(
          await stores[1]!.finish([{ kind: "completed", id: h.id, fence: winner.job!.fence, result: null }]),
        ).toEqual([true]);
      } else if (record.state === "cancelled") {
        tally.cancelled += 1;
      } else {
        // Claimers all looked before the rescuer re-queued it (queued), or the rescuer skipped the
        // row the cancel held locked (still the old holder's): no one else holds it either way.
        expect(expired, `round ${round}: a fresh job nobody claimed nor cancelled`).toBe(true);
        if (record.state === "running") expect(record.fence).toBe(prior!.fence);
        else expect(record.state).toBe("queued");
        tally.untouched += 1;
        // Out of the way of the next round: it must be the only eligible job.
        await t.ferry.store.requestCancel(h.id, 0);
        if (record.state === "running") {
          await t.ferry.store.finish([{ kind: "completed", id: h.id, fence: prior!.fence, result: null }]);
        }
      }
      expect((await t.ferry.store.getJob(h.id))!.state).not.toMatch(/^(queued|scheduled|running)$/);
    }
    console.info(`claim races on ${store.name}: ${JSON.stringify(tally)}`);
  }, 60_000);
});
