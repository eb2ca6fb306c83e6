import { describe, expect, it } from "vitest";
import { registerDecoder, registerEncoder } from "../../src/index.js";
import { STORES } from "./stores.js";

class Money {
  constructor(
    readonly cents: bigint,
    readonly currency: string,
  ) {}
}

registerEncoder(
  "test.Money",
  (v) => v instanceof Money,
  (v) => ({ cents: (v as Money).cents.toString(), currency: (v as Money).currency }),
);
registerDecoder("test.Money", (v) => {
  const { cents, currency } = v as { cents: string; currency: string };
  return new Money(BigInt(cents), currency);
});

describe.each(STORES)("serializers through $name", (store) => {
  it("round-trips structured payloads and results with json tags, msgpack per queue and per job", async () => {
    const opened = await store.fresh({ queues: { packed: { serializer: "msgpack" } } });
    try {
      const { ferry } = opened;
      const seen: unknown[] = [];
      const worker = ferry.worker({
        queues: ["default", "packed"],
        pollInterval: "20ms",
        handlers: {
          "types.echo": async (payload: unknown) => {
            seen.push(payload);
            return payload;
          },
        },
      });
      await worker.start();
      const value = {
        when: new Date("2026-01-02T03:04:05.678Z"),
        map: new Map<string, number>([["a", 1]]),
        set: new Set([1, 2]),
        big: 12345678901234567890n,
        bytes: new Uint8Array([1, 2, 3]),
        money: new Money(1999n, "EUR"),
      };
      const viaJson = await ferry.launch("types.echo", value);
      const viaQueue = await ferry.launch("types.echo", { ...value, money: undefined }, { queue: "packed" });
      const viaJob = await ferry.launch(
        "types.echo",
        { ...value, money: undefined },
        { serializer: "msgpack" },
      );
      await ferry.drain([viaJson, viaQueue, viaJob], { timeout: "10s" });
      expect((await ferry.store.getJob(viaQueue.id))!.serializer).toBe("msgpack");
      expect((await ferry.store.getJob(viaJob.id))!.serializer).toBe("msgpack");
      const fromJson = (await ferry.result(viaJson)).value as typeof value;
      expect(fromJson.when).toEqual(value.when);
      expect(fromJson.map).toEqual(value.map);
      expect(fromJson.set).toEqual(value.set);
      expect(fromJson.big).toBe(value.big);
      expect(Array.from(fromJson.bytes)).toEqual([1, 2, 3]);
      expect(fromJson.money).toBeInstanceOf(Money);
      expect(fromJson.money.cents).toBe(1999n);
      for (const h of [viaQueue, viaJob]) {
        const v = (await ferry.result(h)).value as typeof value;
        expect(v.when).toEqual(value.when);
        expect(v.big).toBe(value.big);
        expect(v.map.get("a")).toBe(1);
      }
      expect(seen).toHaveLength(3);
    } finally {
      await opened.cleanup();
    }
  });

  it("refuses prototype keys in payloads a worker reads", async () => {
    const opened = await store.fresh();
    try {
      const { ferry } = opened;
      const h = await ferry.launch("types.poison", {}, { attempts: 1 });
      // Tamper with the stored payload as a hostile writer with store access might.
      const record = (await ferry.store.getJob(h.id))!;
      expect(record.serializer).toBe("json");
      const worker = ferry.worker({ pollInterval: "20ms", handlers: { "types.poison": async () => "ran" } });
      const hostile = new TextEncoder().encode('{"__proto__":{"polluted":true}}');
      await ferry.store.enqueue([
        {
          id: "01900000-0000-7000-8000-0000000000aa",
          handler: "types.poison",
          queue: "default",
          payload: hostile,
          serializer: "json",
          cookieHash: record.cookieHash,
          owner: null,
          priority: 0,
          delayMs: 0,
          runAt: null,
          maxAttempts: 1,
          policy: record.policy,
          uniqueKey: null,
          label: null,
          group: null,
          dependsOn: [],
          detached: false,
        },
      ]);
      await worker.start();
      const status = await ferry.wait(
        { id: "01900000-0000-7000-8000-0000000000aa", cookie: h.cookie },
        { timeout: "10s" },
      );
      expect(status.state).toBe("failed");
      expect(status.errorInfo?.code).toBe("FERRY_SERIALIZATION");
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    } finally {
      await opened.cleanup();
    }
  });
});
