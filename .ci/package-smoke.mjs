// Run by .ci/package-check inside a project where the packed ferry is installed, with a daemon
// started by `npx ferry daemon` (FERRY_SERVER, FERRY_TOKEN) that loaded the plugin `acme` from a
// folder outside this project. Plain JavaScript: no build step, no TypeScript runner.
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Ferry, defineJob } from "ferry";
import { connect } from "ferry/client";
import { definePlugin, PLUGIN_API_VERSION } from "ferry/plugin";

// The library, in-process, on its own store.
const ferry = await Ferry.open({ store: "sqlite:./library.db" });
const double = defineJob({ name: "smoke.double", handler: async (p) => p.n * 2 });
const worker = ferry.worker({ queues: ["default"], handlers: [double] });
await worker.start();
const result = await ferry.run(double, { n: 21 }, { timeout: "10s" });
assert.equal(result.state, "completed");
assert.equal(result.value, 42);
await ferry.close();

// The plugin API: the same rules as the daemon's.
assert.equal(PLUGIN_API_VERSION, "1.0.0");
assert.equal(definePlugin({ name: "ok", version: "1", handlers: { a: () => 1 } }).name, "ok");
assert.throws(() => definePlugin({ name: "Bad Name", version: "1", handlers: { a: () => 1 } }), {
  code: "FERRY_INVALID_ARGUMENT",
});

// The CLI against the daemon, running the plugin's handler; and how fast it starts.
const ferryCli = (...args) => {
  const started = process.hrtime.bigint();
  const out = execFileSync("node_modules/.bin/ferry", args, { encoding: "utf8" }).trim();
  return { out, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
};
const handle = ferryCli("launch", "acme.greet", '{"name":"Ada"}').out;
assert.match(handle, /^[\w-]+\.[\w-]+$/);
ferryCli("wait", handle, "--timeout", "20s");
const value = JSON.parse(ferryCli("result", handle, "--json").out);
assert.deepEqual(value.value, { greeting: "hello Ada" });

// The remote client against the same daemon (FERRY_SERVER, FERRY_TOKEN), over both transports.
for (const transport of ["grpc", "connect-json"]) {
  const remote = await connect({ transport });
  const greeted = await remote.run("acme.greet", { name: "Lin" }, { timeout: "20s" });
  assert.deepEqual([greeted.state, greeted.value], ["completed", { greeting: "hello Lin" }]);
  await assert.rejects(remote.status({ id: greeted.id, cookie: "A".repeat(22) }), { code: "FERRY_NOT_FOUND" });
}

const times = [1, 2, 3, 4, 5].map(() => ferryCli("launch", "ferry.echo", "{}").seconds).sort((a, b) => a - b);
const median = times[2];
console.log(`ferry launch from the installed package: median ${median.toFixed(3)} s of 5 (${times.map((t) => t.toFixed(3)).join(", ")})`);
// A figure to read, not a bound to assert (a loaded machine would fail it): what guards start-up
// is that the installed CLI runs compiled JavaScript, with no TypeScript runner to pull in.
assert.ok(!existsSync(join(process.cwd(), "node_modules", "tsx")), "tsx was installed with ferry");
console.log("smoke: library, plugin API, remote client, CLI and plugin daemon all work from the package");
