import type { BenchDriver } from "../driver.js";
import { createDriver } from "../drivers/index.js";
import { errorText, withTimeout } from "./time.js";

const SETUP_MS = 30_000;
const TEARDOWN_MS = 120_000;

/** A fresh driver: setup, run `work` within timeoutMs, always teardown. */
export async function withDriver<T>(
  name: string,
  timeoutMs: number,
  work: (driver: BenchDriver) => Promise<T>,
): Promise<T> {
  const driver = await withTimeout(createDriver(name), SETUP_MS, `${name}: load`);
  await withTimeout(driver.setup(), SETUP_MS, `${name}: setup`);
  try {
    return await withTimeout(work(driver), timeoutMs, name);
  } finally {
    await withTimeout(driver.teardown(), TEARDOWN_MS, `${name}: teardown`).catch((err: unknown) =>
      console.error(`[bench] ${errorText(err)}`),
    );
  }
}
