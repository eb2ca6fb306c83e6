/**
 * What the daemon benchmarks share: a fresh store of each kind, `ferry daemon` as a child process
 * (authentication on, as users run it; its workers on another queue, so only launching is
 * measured; quotas out of the way), its CPU time from /proc, and a launch loop of concurrent
 * callers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteStreamsContaining, NATS_URL, uniqueToken } from "./nats.js";
import { dropSchema, PG_URL, uniqueSchema } from "./pg.js";

export interface FreshStore {
  readonly url: string;
  remove(): Promise<void>;
}

export function freshStore(kind: string): FreshStore {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "ferry-bench-daemon-"));
    return {
      url: `sqlite:${join(dir, "ferry.db")}`,
      remove: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (kind === "postgres") {
    const schema = uniqueSchema("ferry_bench_daemon");
    return { url: `${PG_URL}?schema=${schema}`, remove: () => dropSchema(schema) };
  }
  if (kind === "nats") {
    const prefix = `fbd_${uniqueToken()}`;
    return { url: `${NATS_URL}?prefix=${prefix}`, remove: () => deleteStreamsContaining(prefix) };
  }
  throw new Error(`no store "${kind}" for a daemon benchmark`);
}

const BIN = new URL("../../bin/ferry.js", import.meta.url).pathname;

export interface DaemonChild {
  readonly url: string;
  readonly token: string;
  /** CPU time the daemon process has used so far (user + system), in microseconds. */
  cpuMicros(): number;
  stop(): Promise<void>;
}

export async function startDaemonChild(store: string, cwd: string): Promise<DaemonChild> {
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, "daemon", "--port", "0", "--no-plugins", "--store", store],
    {
      cwd,
      env: {
        ...process.env,
        FERRY_WORKERS__QUEUES: '["bench-elsewhere"]',
        FERRY_LIMITS__LAUNCHES_PER_MINUTE: "1000000",
        FERRY_LIMITS__MAX_ACTIVE_PER_USER: "10000000",
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      const found = /listening on (https?:\/\/[^\s"]+)/.exec(text)?.[1];
      if (found !== undefined) resolve(found);
    });
    child.once("exit", (code) => reject(new Error(`the daemon exited (${code}) before listening`)));
  });
  const token = readFileSync(join(cwd, "ferry-admin.token"), "utf8").trim();
  return {
    url,
    token,
    cpuMicros: () => processCpuMicros(child.pid!),
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Linux clock ticks per second (USER_HZ), what /proc/PID/stat counts CPU time in. */
const TICKS_PER_SECOND = 100;

/** utime + stime of a process, from /proc/PID/stat (fields 14 and 15, after the command's parentheses). */
function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / TICKS_PER_SECOND;
}

/** `total` launches by `callers` concurrent callers; answers launches per second. */
export async function launchRate(
  total: number,
  callers: number,
  launch: (caller: number, n: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      for (let n = next++; n < total; n = next++) await launch(caller, n);
    }),
  );
  return total / ((performance.now() - startedAt) / 1000);
}

export const benchPayload = (n: number) => ({ to: `user${n}@example.com`, n });

/** The median of some figures (the upper one of an even count). */
export const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
