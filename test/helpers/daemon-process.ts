/**
 * `bin/ferry.js` as a child process, for end-to-end tests: the daemon on a free port (it prints
 * where it listens), and CLI commands with their exit code and output. The child sees none of the
 * test runner's FERRY_* variables, only the ones a test gives it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = new URL("../../bin/ferry.js", import.meta.url).pathname;

export interface Exited {
  readonly code: number | null;
  /** The signal that ended the child, when one did (then `code` is null). */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runFerry(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): ChildProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FERRY_")));
  return spawn(process.execPath, [bin, ...args], {
    env: { ...clean, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd === undefined ? {} : { cwd }),
  });
}

/** Everything the child writes, collected from now on. */
export function output(child: ChildProcess): {
  readonly stdout: () => string;
  readonly stderr: () => string;
} {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  return { stdout: () => stdout, stderr: () => stderr };
}

/** Everything the child wrote, once it exited. */
export function finished(child: ChildProcess): Promise<Exited> {
  const seen = output(child);
  return new Promise((resolve) =>
    child.on("exit", (code, signal) =>
      resolve({ code, signal, stdout: seen.stdout(), stderr: seen.stderr() }),
    ),
  );
}

/** A CLI command, run to its end. */
export function ferryCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exited> {
  return finished(runFerry(args, env));
}

/** The URL the daemon prints once it listens. */
export function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      const url = /listening on (https?:\/\/[^\s"]+)/.exec(text)?.[1];
      if (url !== undefined) resolve(url);
    });
    child.on("exit", (code) => reject(new Error(`daemon exited (${code}) before listening: ${text}`)));
  });
}

export interface TestDaemon {
  readonly child: ChildProcess;
  readonly url: string;
  /** The daemon's working directory (its ./ferry.db and ./ferry-admin.token). */
  readonly dir: string;
  /** The first admin's token, from the file the daemon wrote on its first start (auth on). */
  adminToken(): string;
  /** Everything the daemon wrote so far, stdout then stderr. */
  log(): string;
  /** Kills the daemon if it still runs and removes its directory. */
  stop(): void;
}

/** `ferry daemon` on a free port in a fresh directory (plugins off unless `args` say otherwise). */
export async function startTestDaemon(
  options: { readonly args?: string[]; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<TestDaemon> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-daemon-"));
  const child = runFerry(
    ["daemon", "--port", "0", ...(options.args ?? ["--no-plugins"])],
    options.env ?? {},
    dir,
  );
  const seen = output(child);
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = await listening(child);
    return {
      child,
      url,
      dir,
      adminToken: () => readFileSync(join(dir, "ferry-admin.token"), "utf8").trim(),
      log: () => seen.stdout() + seen.stderr(),
      stop,
    };
  } catch (error) {
    stop();
    throw error;
  }
}

/** Call options that send `token` as a bearer token. */
export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
