/**
 * A TCP proxy for tests that need a half-open connection: it listens on a free loopback port and
 * forwards every connection to a target (PostgreSQL on 127.0.0.1:5432 by default).
 *
 * `freeze()` stops forwarding in both directions without closing anything: the sockets stay open,
 * bytes already sent wait in the proxy, new connections are accepted but get no answer, and a side
 * that closes is not told to the other. To the client this is a peer that vanished without a FIN
 * (a dead NAT entry, a pulled cable). `thaw()` delivers what was held and forwards again; `close()`
 * destroys every socket and stops listening.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

interface Side {
  readonly socket: Socket;
  /** Chunks read while frozen, delivered to the other side on thaw. */
  held: Buffer[];
  /** This side closed while frozen: close the other side on thaw. */
  ended: boolean;
}

interface Pair {
  readonly client: Side;
  readonly upstream: Side;
}

export interface TcpProxy {
  /** The loopback port the proxy listens on. */
  readonly port: number;
  /** Connections accepted so far (a reconnecting client shows up here). */
  readonly accepted: number;
  /** Connections currently open through the proxy. */
  readonly open: number;
  readonly frozen: boolean;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host?: string; port?: number } = {}): Promise<TcpProxy> {
  const host = target.host ?? "127.0.0.1";
  const port = target.port ?? 5432;
  const pairs = new Set<Pair>();
  let frozen = false;
  let accepted = 0;

  const other = (pair: Pair, side: Side): Side => (side === pair.client ? pair.upstream : pair.client);

  const destroyPair = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.socket.destroy();
    pair.upstream.socket.destroy();
  };

  const wire = (pair: Pair, side: Side) => {
    side.socket.on("data", (chunk: Buffer) => {
      if (frozen) {
        side.held.push(chunk);
        // Stop reading: the kernel buffers fill and the sender's writes eventually block too.
        side.socket.pause();
        return;
      }
      other(pair, side).socket.write(chunk);
    });
    const onGone = () => {
      if (!pairs.has(pair)) return;
      if (frozen) side.ended = true;
      else destroyPair(pair);
    };
    side.socket.on("end", onGone);
    side.socket.on("close", onGone);
    // An error ends the pair like a close does; it must not crash the test process.
    side.socket.on("error", onGone);
  };

  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = tcpConnect({ host, port });
    const pair: Pair = {
      client: { socket: client, held: [], ended: false },
      upstream: { socket: upstream, held: [], ended: false },
    };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    wire(pair, pair.client);
    wire(pair, pair.upstream);
    if (frozen) {
      client.pause();
      upstream.pause();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");

  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    get frozen() {
      return frozen;
    },
    freeze() {
      frozen = true;
      for (const pair of pairs) {
        pair.client.socket.pause();
        pair.upstream.socket.pause();
      }
    },
    thaw() {
      if (!frozen) return;
      frozen = false;
      for (const pair of [...pairs]) {
        for (const side of [pair.client, pair.upstream]) {
          const to = other(pair, side).socket;
          for (const chunk of side.held.splice(0)) if (!to.destroyed) to.write(chunk);
        }
        if (pair.client.ended || pair.upstream.ended) {
          destroyPair(pair);
          continue;
        }
        pair.client.socket.resume();
        pair.upstream.socket.resume();
      }
    },
    async close() {
      frozen = false;
      for (const pair of [...pairs]) destroyPair(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
