/**
 * Child process of the rss scenario: `node --expose-gc --import tsx rss-child.ts DRIVER JOBS`.
 * Prints one JSON line: the figures, or { error }.
 */
import { createDriver } from "../drivers/index.js";
import { errorText, round, sleep } from "../lib/time.js";

const MB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc;

/** Collect garbage (if allowed) and let the allocator settle before reading RSS. */
async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(100);
  }
  return process.memoryUsage().rss;
}

async function main(name: string, jobs: number): Promise<Record<string, unknown>> {
  const driver = await createDriver(name);
  await driver.setup();
  try {
    const idle = await settle();
    const externalIdle = await driver.externalMemoryBytes?.();
    const start = performance.now();
    await driver.enqueueBulk(jobs);
    const enqueueSeconds = (performance.now() - start) / 1000;
    const after = await settle();
    const externalAfter = await driver.externalMemoryBytes?.();
    const peak = process.resourceUsage().maxRSS * 1024;
    const rssDelta = round((after - idle) / MB, 1);
    const external =
      externalIdle === undefined || externalAfter === undefined
        ? null
        : round((externalAfter - externalIdle) / MB, 1);
    return {
      jobs,
      gc_forced: gc !== undefined,
      rss_idle_mb: round(idle / MB, 1),
      rss_after_mb: round(after / MB, 1),
      rss_delta_mb: rssDelta,
      peak_rss_delta_mb: round((peak - idle) / MB, 1),
      external_delta_mb: external,
      memory_delta_mb: external ?? rssDelta,
      memory_source: external === null ? "process RSS" : "Redis used_memory (client RSS in rss_delta_mb)",
      enqueue_seconds: round(enqueueSeconds),
    };
  } finally {
    await driver.teardown();
  }
}

const [name = "", jobs = "0"] = process.argv.slice(2);
try {
  console.log(JSON.stringify(await main(name, Number(jobs))));
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ error: `${name}: ${errorText(err)}` }));
  process.exit(1);
}
