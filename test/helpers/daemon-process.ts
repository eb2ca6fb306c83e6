/**
 * `bin/ferry.js` as a child process, for end-to-end tests: the daemon on a free port (it prints
 * where it listens), and CLI commands with their exit code and output. The child sees none of the
 * test runner's FERRY_* variables, only the ones a test gives it.
 */
import { type ChildProcess, spawn } from "node:child_process";

const bin = new URL("../../bin/ferry.js", import.meta.url).pathname;

export interface Exited {
  readonly code: number | null;
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
    child.on("exit", (code) => resolve({ code, stdout: seen.stdout(), stderr: seen.stderr() })),
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
