import { defineConfig } from "vitest/config";

/**
 * Tests that disrupt a server (restart the shared PostgreSQL, terminate its backends, freeze
 * connections; restart, cut or kill nats-servers the tests start themselves). They run one file at
 * a time, after the main suite, never alongside other tests:
 * `vitest run --config vitest.disruptive.config.ts`.
 *
 * The NATS files are left out of the default run until they hold there (issue 4, next slice): the
 * restart and connection tests pass alone but their wake-up probe waited out a 5 s poll once each
 * in a loaded full run, and the three-node cluster test is being finished. Run them with
 * `FERRY_TEST_NATS_DISRUPTIVE=1 npx vitest run --config vitest.disruptive.config.ts test/disruptive/nats-*`.
 */
const NOT_IN_DEFAULT_RUN =
  process.env.FERRY_TEST_NATS_DISRUPTIVE === "1" ? [] : ["test/disruptive/nats-*.test.ts"];
export default defineConfig({
  test: {
    include: ["test/disruptive/**/*.test.ts"],
    exclude: NOT_IN_DEFAULT_RUN,
    fileParallelism: false,
    maxWorkers: 1,
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 60_000,
    teardownTimeout: 60_000,
  },
});
