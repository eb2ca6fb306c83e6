/**
 * Memory with n queued jobs. Each driver runs in its own child process (rss-child.ts, with
 * --expose-gc) so one system's heap does not pollute another's figure.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Figures, Scenario } from "./scenario.js";

const CHILD = fileURLToPath(new URL("./rss-child.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export function rss(jobs: number, timeoutMs: number): Scenario {
  return {
    id: "rss",
    headline: { metric: "memory_delta_mb", better: "lower" },
    params: {
      jobs,
      measured:
        "process RSS after setup (idle) vs after enqueueing n jobs, gc forced, one child process each",
      memory_delta_mb:
        "RSS delta, or Redis used_memory delta where the queue lives in Redis (see memory_source)",
    },
    target: { kind: "max_absolute", value: 100 },
    run: (name) => runChild(name, jobs, timeoutMs),
  };
}

function runChild(name: string, jobs: number, timeoutMs: number): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", CHILD, name, String(jobs)], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name}: rss child timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const last = out.trim().split("\n").at(-1) ?? "";
      try {
        const result = JSON.parse(last) as Figures & { error?: string };
        if (typeof result.error === "string") reject(new Error(result.error));
        else resolve(result);
      } catch {
        reject(new Error(`${name}: rss child exited ${code} without a result`));
      }
    });
  });
}
