import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // bin/ferry.js runs dist/: rebuilt first when a source is newer.
    globalSetup: ["test/build-dist.ts", "test/nats-anchor.ts"],
    // They restart and disrupt the shared PostgreSQL server: run alone, see vitest.disruptive.config.ts.
    exclude: [...configDefaults.exclude, "test/disruptive/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Two cores: keep parallel files low so fault tests' timings stay meaningful.
    maxWorkers: 2,
  },
});
