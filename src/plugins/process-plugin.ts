/**
 * A process-isolated plugin: one long-lived child (host-process.ts) runs all its handler calls.
 * The daemon side is one proxy Handler per plugin handler. A call aborted by its job (timeout,
 * cancel, shutdown) asks the child to abort; a child that does not even acknowledge that within
 * ABORT_GRACE_MS (its event loop is stuck, say in a busy loop) is killed. One that acknowledges
 * keeps running: the handler has its signal, and the worker has already settled or will force
 * the job after its cancel grace, as for any handler. A child that exits, crashes or runs out of memory fails every call in flight with
 * FERRY_HANDLER_CRASHED and is started again for the next call, at most once per RESTART_GAP_MS.
 * So does one that breaks its message channel (host-channel.ts: a line that is not JSON, or too
 * long): the daemon kills it, whatever it wrote.
 */
import type { ChildProcess } from "node:child_process";
import { ErrorCode, FerryError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Handler, JobContext } from "../worker/handler.js";
import { checkManifest, type PluginManifest } from "./define-plugin.js";
import type { HostChannel } from "./host-channel.js";
import { describeExit, type HostWalls, startHost } from "./host-process.js";
import type { PluginState } from "./status.js";

/** How long an aborted call's child has to acknowledge the abort before it is killed (busy loop). */
export const ABORT_GRACE_MS = 2_000;
/** At most one restart per this long: a plugin that crashes at once does not spin. */
export const RESTART_GAP_MS = 1_000;

interface Call {
  readonly ctx: JobContext;
  /** The child heard this call's abort: it is not stuck, so it is not killed. */
  readonly heard: () => void;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly cleanup: () => void;
}

interface ErrorFromHost {
  message?: unknown;
  code?: unknown;
  retryable?: unknown;
  detail?: unknown;
  control?: { action?: unknown; reason?: unknown; delay?: unknown };
}

const crashed = (message: string) => new FerryError(ErrorCode.HandlerCrashed, message);

export class ProcessPlugin {
  readonly isolation = "process";
  #child: ChildProcess | undefined;
  #channel: HostChannel | undefined;
  #starting: Promise<{ child: ChildProcess; channel: HostChannel }> | undefined;
  readonly #calls = new Map<number, Call>();
  #nextId = 1;
  #lastStart = Date.now();
  #restarts = 0;
  #state: PluginState = "loaded";
  #reason = "";
  /** Why the daemon itself ended the child, when it did. */
  #killedFor: string | undefined;

  constructor(
    readonly manifest: PluginManifest,
    readonly folder: string,
    private readonly module: string,
    private readonly walls: HostWalls,
    child: ChildProcess,
    channel: HostChannel,
    private readonly log: Logger,
  ) {
    this.#adopt(child, channel);
  }

  get state(): PluginState {
    return this.#state;
  }
  get restarts(): number {
    return this.#restarts;
  }
  get reason(): string {
    return this.#reason;
  }

  /** The proxy handlers, named `NAME.HANDLER`. */
  handlers(): Record<string, Handler<never, unknown>> {
    return Object.fromEntries(
      this.manifest.handlers.map((key) => [
        `${this.manifest.name}.${key}`,
        ((payload: unknown, ctx: JobContext) => this.call(key, payload, ctx)) as Handler<never, unknown>,
      ]),
    );
  }

  async call(handler: string, payload: unknown, ctx: JobContext): Promise<unknown> {
    const { child, channel } = await this.#running();
    const id = this.#nextId++;
    const { signal } = ctx;
    return new Promise<unknown>((resolve, reject) => {
      let abortTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        const reason = signal.reason as FerryError | undefined;
        this.#send(channel, {
          type: "abort",
          id,
          code: reason?.code ?? ErrorCode.Cancelled,
          message: String(reason?.message),
        });
        abortTimer = setTimeout(
          () => this.#kill(child, `it did not answer an abort within ${ABORT_GRACE_MS / 1000} s (stuck)`),
          ABORT_GRACE_MS,
        );
      };
      const cleanup = () => {
        signal.removeEventListener("abort", onAbort);
        clearTimeout(abortTimer);
      };
      const heard = () => clearTimeout(abortTimer);
      this.#calls.set(id, { ctx, heard, resolve, reject, cleanup });
      const job = { ...ctx.job, launchedAt: ctx.job.launchedAt.toISOString() };
      try {
        // A closed pipe is no error here: the child's exit fails this call.
        channel.send({ type: "call", id, handler, payload, job });
      } catch (error) {
        // JSON cannot carry the payload (a BigInt from msgpack, say): this call fails, nothing else.
        this.#settle(
          id,
          new FerryError(
            ErrorCode.Serialization,
            `the payload cannot be sent to a plugin as JSON: ${String(error)}`,
          ),
        );
        return;
      }
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Ends the child; calls in flight fail. */
  async close(): Promise<void> {
    this.#state = "stopped";
    const child = this.#child ?? (await this.#starting?.catch(() => undefined))?.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.#kill(child, "the daemon is closing", "SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 1_000);
    await exited;
    clearTimeout(timer);
  }

  /** The child, started again (after the restart gap) when the last one ended. */
  async #running(): Promise<{ child: ChildProcess; channel: HostChannel }> {
    if (this.#state === "stopped") throw crashed(`plugin ${this.manifest.name} is stopped`);
    if (this.#child !== undefined && this.#channel !== undefined)
      return { child: this.#child, channel: this.#channel };
    this.#starting ??= this.#restart().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #restart(): Promise<{ child: ChildProcess; channel: HostChannel }> {
    const wait = this.#lastStart + RESTART_GAP_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    this.#lastStart = Date.now();
    this.#restarts++;
    let started: Awaited<ReturnType<typeof startHost>>;
    try {
      started = await startHost(this.module, this.folder, this.walls, this.log);
    } catch (error) {
      this.#reason = (error as Error).message;
      throw crashed(`plugin ${this.manifest.name} could not restart: ${this.#reason}`);
    }
    const { name, version, handlers } = started.hello;
    const again = (() => {
      try {
        return checkManifest(name, version, handlers);
      } catch {
        return undefined;
      }
    })();
    if (again?.name !== this.manifest.name || this.#state === "stopped") {
      started.child.kill("SIGKILL");
      this.#reason = "it changed its name or handlers on restart";
      throw crashed(`plugin ${this.manifest.name} could not restart: ${this.#reason}`);
    }
    this.log.info({ plugin: name, restarts: this.#restarts }, `plugin ${this.manifest.name} restarted`);
    this.#adopt(started.child, started.channel);
    return started;
  }

  #adopt(child: ChildProcess, channel: HostChannel): void {
    this.#child = child;
    this.#channel = channel;
    this.#killedFor = undefined;
    this.#state = "loaded";
    this.#reason = "";
    channel.onMessage((message) => this.#onMessage(message));
    channel.onBroken((why) => this.#kill(child, why));
    child.once("exit", (code, signal) => this.#onExit(child, code, signal));
  }

  #onMessage(message: Record<string, unknown>): void {
    const m = message as {
      type?: unknown;
      id?: unknown;
      fraction?: unknown;
      ok?: unknown;
      value?: unknown;
      error?: unknown;
    };
    if (typeof m?.id !== "number") return;
    const call = this.#calls.get(m.id);
    if (call === undefined) return;
    if (m.type === "aborting") {
      call.heard();
    } else if (m.type === "progress" && typeof m.fraction === "number") {
      call.ctx.progress(m.fraction).catch(() => undefined);
    } else if (m.type === "result") {
      if (m.ok === true) this.#settle(m.id, undefined, m.value);
      else this.#settle(m.id, this.#errorOf(call.ctx, (m.error ?? {}) as ErrorFromHost));
    }
  }

  /** The plugin's error as the worker would have seen it from an inline handler. */
  #errorOf(ctx: JobContext, error: ErrorFromHost): unknown {
    const control = error.control;
    if (control !== undefined) {
      try {
        if (control.action === "snooze") ctx.snooze(control.delay as string | number);
        if (control.action === "cancel") ctx.cancel(String(control.reason));
        ctx.discard(String(control.reason));
      } catch (thrown) {
        return thrown;
      }
    }
    const out = new Error(typeof error.message === "string" ? error.message : "error") as Error & {
      code?: string;
      retryable?: boolean;
      detail?: string;
    };
    if (typeof error.code === "string") out.code = error.code;
    if (typeof error.retryable === "boolean") out.retryable = error.retryable;
    if (typeof error.detail === "string") out.detail = error.detail;
    return out;
  }

  #settle(id: number, error: unknown, value?: unknown): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    call.cleanup();
    if (error === undefined) call.resolve(value);
    else call.reject(error);
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#channel?.close();
    this.#channel = undefined;
    const how = this.#killedFor ?? describeExit(code, signal);
    if (this.#state !== "stopped") {
      this.#state = "crashed";
      this.#reason = how;
      this.log.error(
        { plugin: this.manifest.name, code, signal, inFlight: this.#calls.size },
        `plugin ${this.manifest.name} process ended (${how}); it restarts for the next call`,
      );
    }
    for (const id of [...this.#calls.keys()]) {
      this.#settle(id, crashed(`plugin ${this.manifest.name} process ended (${how})`));
    }
  }

  #kill(child: ChildProcess, why: string, signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.#child === child) this.#killedFor = `killed: ${why}`;
    child.kill(signal);
  }

  #send(channel: HostChannel, message: object): void {
    try {
      channel.send(message);
    } catch {
      // Not JSON-able: nothing the daemon sends itself is; an abort with no message still goes.
    }
  }
}

/** Starts a plugin's first child and checks what it exports. */
export async function startProcessPlugin(
  folder: string,
  module: string,
  walls: HostWalls,
  log: Logger,
): Promise<{ manifest: PluginManifest; start: () => ProcessPlugin; refuse: () => void }> {
  const { child, channel, hello } = await startHost(module, folder, walls, log);
  let manifest: PluginManifest;
  try {
    manifest = checkManifest(hello.name, hello.version, hello.handlers);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    manifest,
    start: () => new ProcessPlugin(manifest, folder, module, walls, child, channel, log),
    refuse: () => child.kill("SIGKILL"),
  };
}
