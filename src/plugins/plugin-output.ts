/**
 * A plugin process's stdout and stderr into the daemon's log, in bounded memory. readline would
 * keep a line with no newline whole (hundreds of MB, then "Invalid string length" thrown in the
 * daemon); here a line is cut at MAX_LINE bytes while it is read and the rest of it skipped up to
 * its newline, so at most MAX_LINE bytes per stream are held. And a plugin may fill only so much
 * of the log: past LOG_BYTES_PER_SECOND its lines are dropped, with one note per second saying
 * how much was.
 */
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import type { Logger } from "../core/logger.js";

/** Longest line of a plugin's output kept in the log, in bytes; the rest of the line is cut. */
export const MAX_LINE = 2_000;
/** Bytes of one plugin's output (stdout and stderr together) logged per second at most. */
export const LOG_BYTES_PER_SECOND = 64 * 1024;
const WINDOW_MS = 1_000;
const NEWLINE = 0x0a;

type Stream = "stdout" | "stderr";

export function forwardOutput(child: ChildProcess, plugin: string, log: Logger): void {
  const budget = new LogBudget(plugin, log);
  for (const stream of ["stdout", "stderr"] as const) {
    const source = child[stream];
    if (source !== null) cutLines(source, (line, size) => budget.write(stream, line, size));
  }
}

/**
 * Calls `emit` for each line of `source` and its size in bytes. A line longer than MAX_LINE is
 * emitted (with "…") as soon as its first MAX_LINE bytes are in, so a line with no end still shows;
 * the rest of it is skipped up to its newline. Reads in the stream's own chunks and keeps only the
 * head of the current line.
 */
export function cutLines(source: Readable, emit: (line: string, size: number) => void): void {
  let head: Buffer[] = [];
  let kept = 0;
  /** Past MAX_LINE: the head is out, the rest of this line is skipped. */
  let skipping = false;
  const flush = (cut: boolean) => {
    const text = Buffer.concat(head).toString("utf8");
    emit(cut ? `${text}…` : text, kept);
    head = [];
    kept = 0;
  };
  const take = (part: Buffer) => {
    if (skipping || part.length === 0) return;
    const room = MAX_LINE - kept;
    // A copy: a slice would pin the whole read buffer behind a few bytes.
    const piece = Buffer.from(part.subarray(0, room));
    head.push(piece);
    kept += piece.length;
    if (part.length > room) {
      skipping = true;
      flush(true);
    }
  };
  const end = () => {
    if (!skipping) flush(false);
    skipping = false;
  };
  source.on("data", (chunk: Buffer) => {
    let start = 0;
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, start)) {
      take(chunk.subarray(start, at));
      end();
      start = at + 1;
    }
    take(chunk.subarray(start));
  });
  source.on("end", () => {
    if (kept > 0) flush(false);
  });
  // A read error on a dead child's pipe must not become an uncaught 'error' in the daemon.
  source.on("error", () => undefined);
}

/** One plugin's share of the log: LOG_BYTES_PER_SECOND, the rest counted and noted. */
class LogBudget {
  #windowStart = 0;
  #used = 0;
  #droppedBytes = 0;
  #droppedLines = 0;
  #noteTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly plugin: string,
    private readonly log: Logger,
  ) {}

  write(stream: Stream, line: string, size: number): void {
    const now = Date.now();
    if (now - this.#windowStart >= WINDOW_MS) {
      this.#windowStart = now;
      this.#used = 0;
    }
    const cost = size + 1;
    if (this.#used + cost <= LOG_BYTES_PER_SECOND) {
      this.#used += cost;
      this.log.info({ plugin: this.plugin, stream }, line);
      return;
    }
    this.#droppedBytes += size + 1;
    this.#droppedLines++;
    // One note for all that this window drops, once it is over.
    this.#noteTimer ??= setTimeout(() => this.#note(), this.#windowStart + WINDOW_MS - now).unref();
  }

  #note(): void {
    this.#noteTimer = undefined;
    this.log.warn(
      { plugin: this.plugin, droppedBytes: this.#droppedBytes, droppedLines: this.#droppedLines },
      `plugin ${this.plugin}: dropped ${this.#droppedLines} lines (${this.#droppedBytes} bytes) of its ` +
        `output, over the log limit of ${LOG_BYTES_PER_SECOND} bytes per second`,
    );
    this.#droppedBytes = 0;
    this.#droppedLines = 0;
  }
}
