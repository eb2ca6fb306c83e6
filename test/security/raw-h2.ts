/**
 * A bare HTTP/2 client for tests that must behave as no library would: it never acknowledges the
 * server's SETTINGS (so the server's limits bind only where it enforces them itself), opens as
 * many streams as it likes, and sends header lists of any size. Headers go out as HPACK literals
 * without indexing or Huffman; answers are kept as frames, not decoded.
 */
import type http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 } as const;
export const H2_ERROR = { NO_ERROR: 0, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** The largest frame payload a server must accept before it says otherwise (RFC 9113). */
const MAX_FRAME = 16_384;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export class RawH2 {
  readonly frames: Frame[] = [];
  readonly #socket: net.Socket;
  #pending = Buffer.alloc(0);
  #closed = false;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#read(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    // The preface and an empty SETTINGS: nothing of the server's is acknowledged, ever.
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
  }

  /** Cleartext HTTP/2 by prior knowledge, or TLS with ALPN `h2` when `ca` is given. */
  static async connect(port: number, ca?: Buffer): Promise<RawH2> {
    const socket =
      ca === undefined
        ? net.connect(port, "127.0.0.1")
        : tls.connect({ port, host: "127.0.0.1", ca, servername: "localhost", ALPNProtocols: ["h2"] });
    await new Promise<void>((resolve, reject) =>
      socket.once(ca === undefined ? "connect" : "secureConnect", () => resolve()).once("error", reject),
    );
    return new RawH2(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Opens `stream` (odd, rising) with `fields`, split into CONTINUATION frames when large. */
  headers(stream: number, fields: readonly (readonly [string, string])[], endStream = false): void {
    const block = Buffer.concat(fields.map(([name, value]) => literal(name, value)));
    const parts: Buffer[] = [];
    for (let at = 0; at < block.length || parts.length === 0; at += MAX_FRAME)
      parts.push(block.subarray(at, at + MAX_FRAME));
    const frames = parts.map((part, i) => {
      const last = i === parts.length - 1;
      const flags = (last ? END_HEADERS : 0) | (i === 0 && endStream ? END_STREAM : 0);
      return frame(i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION, flags, stream, part);
    });
    this.#socket.write(Buffer.concat(frames));
  }

  data(stream: number, bytes: Buffer, endStream = false): void {
    this.#socket.write(frame(FRAME.DATA, endStream ? END_STREAM : 0, stream, bytes));
  }

  /** Announces an initial stream window of 0: the server may send no DATA on new streams. */
  zeroWindow(): void {
    const payload = Buffer.alloc(6);
    payload.writeUInt16BE(SETTING.INITIAL_WINDOW_SIZE);
    payload.writeUInt32BE(0, 2);
    this.#socket.write(frame(FRAME.SETTINGS, 0, 0, payload));
  }

  /** Resets `stream` from the client's side (CANCEL, as a client that gave up on it). */
  reset(stream: number, code = 8): void {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(code);
    this.#socket.write(frame(FRAME.RST_STREAM, 0, stream, payload));
  }

  /** Whatever `send` writes goes out in one write, so the server reads it at once. */
  together(send: () => void): void {
    this.#socket.cork();
    send();
    this.#socket.uncork();
  }

  /** The first frame received that `match` accepts, waiting up to `timeoutMs`. */
  async waitFor(match: (frame: Frame) => boolean, what: string, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.#closed) throw new Error(`connection closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** RST_STREAM frames received, by stream, with their error codes. */
  resets(): Map<number, number> {
    return new Map(
      this.frames
        .filter((f) => f.type === FRAME.RST_STREAM)
        .map((f) => [f.stream, f.payload.readUInt32BE(0)]),
    );
  }

  /** The server's SETTINGS as announced (not acknowledgements), by identifier. */
  serverSettings(): Map<number, number> {
    const settings = new Map<number, number>();
    for (const f of this.frames) {
      if (f.type !== FRAME.SETTINGS || (f.flags & ACK) !== 0) continue;
      for (let at = 0; at + 6 <= f.payload.length; at += 6)
        settings.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2));
    }
    return settings;
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 9) {
      const length = this.#pending.readUIntBE(0, 3);
      if (this.#pending.length < 9 + length) break;
      this.frames.push({
        type: this.#pending[3]!,
        flags: this.#pending[4]!,
        stream: this.#pending.readUInt32BE(5) & 0x7fff_ffff,
        payload: Buffer.from(this.#pending.subarray(9, 9 + length)),
      });
      this.#pending = this.#pending.subarray(9 + length);
    }
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }
}

/** SETTINGS identifiers (RFC 9113 section 6.5.2). */
export const SETTING = {
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK "literal header field without indexing, new name", no Huffman coding. */
function literal(name: string, value: string): Buffer {
  const text = (s: string) => {
    const bytes = Buffer.from(s, "latin1");
    return Buffer.concat([integer(bytes.length, 7, 0), bytes]);
  };
  return Buffer.concat([Buffer.from([0]), text(name), text(value)]);
}

/** An HPACK integer with an `n`-bit prefix (RFC 7541 section 5.1). */
function integer(value: number, n: number, high: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([high | value]);
  const out = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/**
 * The status fields of a gRPC answer on a Node HTTP/2 client stream: its trailers, or its headers
 * when the answer is "trailers-only" (a refusal sent before any message).
 */
export function grpcStatusOf(stream: http2.ClientHttp2Stream): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve) => {
    stream.once("response", (headers) => {
      if (headers["grpc-status"] !== undefined) resolve(headers);
    });
    stream.once("trailers", resolve);
  });
}
