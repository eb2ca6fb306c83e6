import { defineConfig } from "vitest/config";

/**
 * Tests that disrupt the shared PostgreSQL server (restart it, terminate its backends, freeze
 * connections). They run one file at a time, after the main suite, never alongside other tests:
 * `vitest run --config vitest.disruptive.config.ts`.
 */
export default defineConfig({
  test: {
    include: ["test/disruptive/**/*.test.ts"],
    fileParallelism: false,
    maxWorkers: 1,
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 60_000,
    teardownTimeout: 60_000,
  },
});
