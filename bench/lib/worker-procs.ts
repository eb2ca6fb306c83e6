/**
 * Worker processes attached to one driver's store (throughput-procs): forks them, runs drain rounds,
 * counts the jobs they report done over IPC, and kills them all at a deadline. The parent only
 * coordinates; it runs no jobs itself.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FromChild, ToChild } from "./procs-protocol.js";
import { errorText } from "./time.js";

const CHILD = fileURLToPath(new URL("../scenarios/procs-child.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** How long close() lets the children stop and disconnect before killing them. */
const CLOSE_MS = 10_000;

export interface WorkerProcsOptions {
  readonly driver: string;
  /** What the parent driver's share() answered. */
  readonly shared: string;
  readonly procs: number;
  readonly concurrency: number;
  /** From open() on: past it every child is killed and the pending call rejects. */
  readonly deadlineMs: number;
}

export class WorkerProcs {
  private readonly children: ChildProcess[] = [];
  /** Jobs each child reported done in the current round. */
  private counts: number[];
  private ready = 0;
  private stopped = 0;
  /** CPU time the children reported for the current round. */
  private cpuMs = 0;
  private exited = 0;
  private closing = false;
  private failure: Error | null = null;
  private rejectFailed: (err: Error) => void = () => {};
  /** Rejects at the first failure (a child's error or unexpected exit, the deadline); never resolves. */
  private readonly failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
  private waiter: { readonly test: () => boolean; readonly resolve: () => void } | null = null;
  private readonly deadline: NodeJS.Timeout;

  /** Forks the children and waits until each has attached (untimed by the caller). */
  static async open(options: WorkerProcsOptions): Promise<WorkerProcs> {
    const group = new WorkerProcs(options);
    try {
      await group.until(() => group.ready === options.procs);
    } catch (err) {
      await group.close();
      throw err;
    }
    return group;
  }

  private constructor(private readonly options: WorkerProcsOptions) {
    this.failed.catch(() => {}); // observed through until(); this only keeps it from being "unhandled"
    this.counts = Array.from({ length: options.procs }, () => 0);
    this.deadline = setTimeout(() => {
      this.fail(
        new Error(`timed out after ${options.deadlineMs / 1000} s (done per process: ${this.split()})`),
      );
      this.kill();
    }, options.deadlineMs);
    for (let i = 0; i < options.procs; i++) this.children.push(this.spawn(i));
  }

  /**
   * One round: every child starts its workers; once they have reported n jobs done in all, every
   * child stops (its in-flight jobs finish and are counted). Answers the jobs done per child and
   * the CPU seconds the children used in all.
   */
  async drain(n: number): Promise<{ readonly done: readonly number[]; readonly cpuS: number }> {
    this.counts = this.counts.map(() => 0);
    this.stopped = 0;
    this.cpuMs = 0;
    this.sendAll({ type: "start" });
    await this.until(() => this.total() >= n);
    this.sendAll({ type: "stop" });
    await this.until(() => this.stopped === this.options.procs);
    return { done: [...this.counts], cpuS: this.cpuMs / 1000 };
  }

  /** "1234/1266": jobs done per child in the current round. */
  split(): string {
    return this.counts.join("/");
  }

  /** Asks every child to close and waits for them to exit; kills those still there after CLOSE_MS. Never rejects. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.failure) this.kill();
    else this.sendAll({ type: "close" });
    const killer = setTimeout(() => this.kill(), CLOSE_MS);
    let giveUp: NodeJS.Timeout | undefined;
    // Bounded: a child that failed to spawn may never report an exit.
    const gaveUp = new Promise<void>((resolve) => (giveUp = setTimeout(resolve, CLOSE_MS + 2000)));
    await Promise.race([this.until(() => this.exited === this.options.procs, true), gaveUp]);
    clearTimeout(killer);
    clearTimeout(giveUp);
    clearTimeout(this.deadline);
  }

  private spawn(index: number): ChildProcess {
    const { driver, shared, concurrency } = this.options;
    const label = `${driver} worker process ${index + 1}`;
    // The loader the harness itself runs under; the child's stdout goes to our stderr (fd 2).
    const child = fork(CHILD, [driver, shared, String(concurrency)], {
      cwd: REPO_ROOT,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", 2, 2, "ipc"],
    });
    child.on("message", (message: FromChild) => {
      if (message.type === "ready") this.ready++;
      else if (message.type === "done") this.counts[index] = (this.counts[index] ?? 0) + message.count;
      else if (message.type === "stopped") {
        this.stopped++;
        this.cpuMs += message.cpuMs;
      } else this.fail(new Error(`${label}: ${message.message}`));
      this.check();
    });
    child.on("error", (err) => this.fail(new Error(`${label}: ${errorText(err)}`)));
    child.on("exit", (code, signal) => {
      this.exited++;
      if (!this.closing)
        this.fail(new Error(`${label} exited (${signal ?? `code ${code}`}) before it was closed`));
      this.check();
    });
    return child;
  }

  private sendAll(message: ToChild): void {
    for (const child of this.children) {
      if (child.connected) child.send(message, (err) => err && this.fail(new Error(errorText(err))));
    }
  }

  /** Resolves once test() holds; rejects at the first failure unless `evenIfFailed`. */
  private until(test: () => boolean, evenIfFailed = false): Promise<void> {
    const reached = new Promise<void>((resolve) => (this.waiter = { test, resolve }));
    this.check();
    return evenIfFailed ? reached : Promise.race([reached, this.failed]);
  }

  private check(): void {
    const waiter = this.waiter;
    if (waiter?.test()) {
      this.waiter = null;
      waiter.resolve();
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectFailed(err);
  }

  private kill(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }

  private total(): number {
    return this.counts.reduce((sum, count) => sum + count, 0);
  }
}
