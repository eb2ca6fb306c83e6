/**
 * The daemon's end of the pipe to one plugin process: newline-delimited JSON over a plain stdio
 * pipe (the child's fd 3), not Node's IPC channel. The other end runs untrusted code that can
 * write anything to that fd (the permission model does not guard open fds), and Node's IPC
 * parser throws uncaught in the daemon on the first byte that is not JSON. Here every line is
 * parsed by us, with secure-json-parse, and capped while it is read: one that is too long, not
 * JSON, or not an object breaks the channel, and the owner kills that plugin process. Nothing a
 * plugin writes throws in the daemon, and it never holds more than `maxBytes` plus one read
 * chunk of a plugin's unfinished line.
 */
import type { Duplex } from "node:stream";
import secureJson from "secure-json-parse";

/** Room beside a result or payload in a message: its type, id, and the JSON around it. */
export const MESSAGE_OVERHEAD_BYTES = 64 * 1024;

const NEWLINE = 0x0a;

export type ChannelListener = (message: Record<string, unknown>) => void;

export class HostChannel {
  readonly #listeners = new Set<ChannelListener>();
  readonly #onBroken = new Set<(why: string) => void>();
  /** The start of a line not yet ended, as read; at most `maxBytes` in all. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #broken: string | undefined;

  constructor(
    private readonly socket: Duplex,
    /** The longest line accepted, newline excluded. */
    readonly maxBytes: number,
  ) {
    socket.on("data", (chunk: Buffer) => this.#read(chunk));
    // EPIPE and the like once the child is gone: its exit is what the owner acts on.
    socket.on("error", () => undefined);
  }

  /** Why the channel broke (the plugin wrote something it may not), once it did. */
  get broken(): string | undefined {
    return this.#broken;
  }

  onMessage(listener: ChannelListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called once, when the plugin breaks the framing; the owner kills the process. */
  onBroken(listener: (why: string) => void): () => void {
    this.#onBroken.add(listener);
    return () => this.#onBroken.delete(listener);
  }

  /**
   * Sends one message. Throws (and sends nothing) when JSON cannot carry it (a BigInt, a cycle);
   * a closed pipe is not an error here: the child's exit fails its calls.
   */
  send(message: object): void {
    const line = `${JSON.stringify(message)}\n`;
    if (this.socket.writable && this.#broken === undefined) this.socket.write(line);
  }

  close(): void {
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    let start = 0;
    while (this.#broken === undefined) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        this.#keep(chunk.subarray(start));
        return;
      }
      const part = chunk.subarray(start, end);
      start = end + 1;
      if (this.#pendingBytes + part.length > this.maxBytes) {
        this.#break(this.#tooLong());
        return;
      }
      const line = this.#pendingBytes === 0 ? part : Buffer.concat([...this.#pending, part]);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#deliver(line);
    }
  }

  /** The unfinished end of a chunk, kept only while the line stays within the cap. */
  #keep(rest: Buffer): void {
    if (rest.length === 0) return;
    if (this.#pendingBytes + rest.length > this.maxBytes) {
      this.#break(this.#tooLong());
      return;
    }
    // A copy: a slice would pin the whole 64 KiB read buffer for a few bytes.
    this.#pending.push(Buffer.from(rest));
    this.#pendingBytes += rest.length;
  }

  #deliver(line: Buffer): void {
    if (line.length === 0) return;
    const message = this.#parse(line);
    if (typeof message === "string") this.#break(message);
    else for (const listener of [...this.#listeners]) listener(message);
  }

  /** The line as a JSON object, or why it is not one. */
  #parse(line: Buffer): Record<string, unknown> | string {
    let message: unknown;
    try {
      message = secureJson.parse(line.toString("utf8"), null, {
        protoAction: "error",
        constructorAction: "error",
      });
    } catch (error) {
      return `it wrote a message that is not JSON (${String((error as Error).message).slice(0, 200)})`;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message))
      return "it wrote a message that is not a JSON object";
    return message as Record<string, unknown>;
  }

  #tooLong(): string {
    return `it wrote a message longer than ${this.maxBytes} bytes`;
  }

  #break(why: string): void {
    if (this.#broken !== undefined) return;
    this.#broken = why;
    this.#pending = [];
    this.#pendingBytes = 0;
    // Stop reading at once: nothing more of this plugin's pipe is buffered or parsed.
    this.socket.destroy();
    for (const listener of [...this.#onBroken]) listener(why);
  }
}
