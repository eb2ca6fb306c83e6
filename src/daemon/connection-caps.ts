/**
 * Connections open at once from one network address, counted where they arrive (the front
 * server, before a byte is read), so that one host cannot open thousands of HTTP/2 sessions and
 * multiply every per-connection bound (streams, body budget, nghttp2 session memory) by them.
 * Past the cap a new connection is closed at once.
 *
 * Loopback is not counted: every local process, and a reverse proxy on the same host, shares
 * 127.0.0.1 (or ::1), so a cap there would let one local program lock all the others out. Callers
 * on loopback are bounded by the per-user caps (calls in flight, body bytes, watches) instead.
 */
import type net from "node:net";
import { isLoopback } from "./loopback.js";

export class ConnectionCaps {
  readonly #maxPerAddress: number;
  readonly #open = new Map<string, number>();

  constructor(maxPerAddress: number) {
    this.#maxPerAddress = maxPerAddress;
  }

  /** Counts `socket` until it closes; false (and it is destroyed) when its address is at the cap. */
  admit(socket: net.Socket): boolean {
    const address = socket.remoteAddress;
    if (address === undefined) {
      // Already gone: nothing to serve.
      socket.destroy();
      return false;
    }
    if (isLoopback(address)) return true;
    const open = this.#open.get(address) ?? 0;
    if (open >= this.#maxPerAddress) {
      socket.destroy();
      return false;
    }
    this.#open.set(address, open + 1);
    socket.once("close", () => {
      const left = (this.#open.get(address) ?? 1) - 1;
      if (left <= 0) this.#open.delete(address);
      else this.#open.set(address, left);
    });
    return true;
  }
}
