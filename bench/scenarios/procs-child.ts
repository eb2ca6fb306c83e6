/**
 * A worker process of throughput-procs, forked by bench/lib/worker-procs.ts with an IPC channel:
 * `node --import tsx procs-child.ts DRIVER SHARED CONCURRENCY`. It attaches to the store the parent
 * set up and answers the parent's messages (bench/lib/procs-protocol.ts). It talks over IPC only:
 * its stdout is the parent's stderr, so nothing it prints can reach the JSON document.
 */
import type { AttachedWorker } from "../driver.js";
import { createDriver } from "../drivers/index.js";
import type { FromChild, ToChild } from "../lib/procs-protocol.js";
import { errorText } from "../lib/time.js";

const [name = "", shared = "", concurrencyArg = "50"] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);

function send(message: FromChild, then?: () => void): void {
  process.send?.(message, undefined, {}, then);
}

/** Reports the first failure, then exits (after the message is on its way). */
let failed = false;
function fail(err: unknown): void {
  if (failed) return;
  failed = true;
  send({ type: "error", message: errorText(err) }, () => process.exit(1));
}

// Never outlive the parent, and never hang silently.
process.on("disconnect", () => process.exit(1));
process.on("unhandledRejection", fail);
process.on("uncaughtException", fail);

/** Jobs done since the last report: one IPC message per event-loop turn, not one per job. */
let pending = 0;
let flushQueued = false;
function flush(): void {
  flushQueued = false;
  if (pending === 0) return;
  send({ type: "done", count: pending });
  pending = 0;
}
function onDone(): void {
  pending++;
  if (!flushQueued) {
    flushQueued = true;
    setImmediate(flush);
  }
}

let cpuAtStart = process.cpuUsage();

async function handle(worker: AttachedWorker, message: ToChild): Promise<void> {
  if (message.type === "start") {
    cpuAtStart = process.cpuUsage();
    await worker.start(concurrency, onDone, fail);
  } else if (message.type === "stop") {
    await worker.stop();
    const cpu = process.cpuUsage(cpuAtStart);
    flush(); // the last counts go before "stopped": IPC keeps the order
    send({ type: "stopped", cpuMs: (cpu.user + cpu.system) / 1000 });
  } else {
    await worker.close();
    process.exit(0);
  }
}

try {
  const driver = await createDriver(name);
  if (!driver.attach) throw new Error(`${name} cannot attach to a store from another process`);
  const worker = await driver.attach(shared);
  // One message at a time, in order: a stop waits for its start.
  let queue = Promise.resolve();
  process.on("message", (message: ToChild) => {
    queue = queue.then(() => handle(worker, message)).catch(fail);
  });
  send({ type: "ready" });
} catch (err) {
  fail(err);
}
