/**
 * `node --import tsx bench/attack-memory.ts [--root DIR] [--seconds N] [--only no-token,watches]`:
 * the memory attacks of a hostile client against a daemon child process, measured from outside.
 *
 * - `no-token`: one cleartext HTTP/2 connection opens 1,000 `JobService/Launch` streams with no
 *   token, writes 1 MB on each and never ends them.
 * - `watches`: with a good token, 3,000 `Watch` streams on one connection, on a job no worker takes
 *   (so none ends by itself).
 *
 * For each, on a fresh daemon: its RSS (VmRSS of /proc/PID/status, sampled every 100 ms) before,
 * at its peak and at the end of the attack (`--seconds`), then at its peak and end in the 2 s after
 * the attacker dropped its connection; and how long `GET /healthz` took in each phase (a probe
 * every 200 ms on a new connection, from a process of its own so that the attacker's busy event
 * loop does not count): the slowest and the median. `--root` runs the daemon of another checkout (e.g. a `git worktree` of an
 * older commit, with this one's node_modules linked in) to compare. Prints JSON on stdout.
 * Target: RSS moves by less than 100 MB, and /healthz answers within 100 ms.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  HandleRequestSchema,
  LaunchRequestSchema,
  LaunchResponseSchema,
} from "../src/gen/ferry/v1/jobs_pb.js";

const { values: flags } = parseArgs({
  options: {
    root: { type: "string", default: new URL("..", import.meta.url).pathname },
    seconds: { type: "string", default: "8" },
    only: { type: "string" },
  },
});
const ROOT = resolve(flags.root!);
const ATTACK_MS = Number(flags.seconds) * 1000;
const NO_TOKEN_STREAMS = 1_000;
const WATCH_STREAMS = 3_000;
const ONE_MB = Buffer.alloc(1_000_000, 0x61);
const TARGET = { rssDeltaMb: 100, healthzMs: 100 };

interface Daemon {
  readonly child: ChildProcess;
  readonly url: string;
  readonly token: string;
  stop(): void;
}

async function startDaemon(): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-attack-"));
  const child = spawn(
    process.execPath,
    [join(ROOT, "bin/ferry.js"), "daemon", "--port", "0", "--no-plugins"],
    {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stderr?.resume();
  const stop = () => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((done, fail) => {
      let text = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        const found = /listening on (https?:\/\/[^\s"]+)/.exec(text)?.[1];
        if (found !== undefined) done(found);
      });
      child.once("exit", (code) => fail(new Error(`daemon exited (${code}): ${text}`)));
    });
    child.stdout?.resume();
    return { child, url, token: readFileSync(join(dir, "ferry-admin.token"), "utf8").trim(), stop };
  } catch (error) {
    stop();
    throw error;
  }
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Math.round(Number(kb) / 1024);
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** The probe, as the prober process runs it: GET /healthz on a new connection, its time in ms. */
const PROBE_SOURCE = `
  const http = require("node:http");
  const probe = (url) => new Promise((done) => {
    const started = performance.now();
    const request = http.get(url + "/healthz", { agent: false, timeout: 5000 }, (response) => {
      response.resume();
      response.once("end", () => done(performance.now() - started));
    });
    request.once("timeout", () => request.destroy());
    request.once("error", () => done(performance.now() - started));
  });`;

/** GET /healthz `count` times in a row, here (before the attack, when nothing else runs). */
async function idleHealthz(url: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise<void>((done) => {
      const request = http.get(`${url}/healthz`, { agent: false }, (response) => {
        response.resume();
        response.once("end", () => done());
      });
      request.once("error", () => done());
    });
    times.push(performance.now() - started);
  }
  return times;
}

/**
 * Probes /healthz every 200 ms from a process of its own until stopped; answers every probe's
 * time. Neither the attacker's busy event loop nor its threads share anything with the probe.
 */
function healthzProber(url: string): () => Promise<number[]> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `${PROBE_SOURCE}
       const times = [];
       let running = true;
       process.stdin.on("data", () => { running = false; });
       (async () => {
         while (running) {
           times.push(await probe(process.argv[1]));
           await new Promise((done) => setTimeout(done, 200));
         }
         process.stdout.write(JSON.stringify(times));
         process.exit(0);
       })();`,
      url,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  return async () => {
    child.stdin?.write("stop\n");
    await exited;
    return JSON.parse(out) as number[];
  };
}

/** Samples RSS every 100 ms until stopped: the highest reading. */
function rssSampler(pid: number): () => number {
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 100);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMb(pid));
  };
}

/** gRPC's 5-byte frame around one message. */
function grpcFrame(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/** A client session that holds all it is asked to send (Node's own 10 MB cap would stop the attack). */
function attackerSession(url: string): http2.ClientHttp2Session {
  const session = http2.connect(url, { maxSessionMemory: 100_000 });
  session.on("error", () => undefined);
  return session;
}

function grpcRequest(session: http2.ClientHttp2Session, method: string, token?: string) {
  const stream = session.request({
    ":method": "POST",
    ":path": `/ferry.v1.JobService/${method}`,
    "content-type": "application/grpc",
    te: "trailers",
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
  });
  stream.on("error", () => undefined);
  return stream;
}

type Statuses = Map<http2.ClientHttp2Stream, string>;

function collectStatus(stream: http2.ClientHttp2Stream, statuses: Statuses) {
  stream.on("data", () => undefined);
  const note = (fields: http2.IncomingHttpHeaders) => {
    const code = fields["ferry-error-code"];
    statuses.set(stream, `grpc-status ${fields["grpc-status"]}${code === undefined ? "" : ` ${code}`}`);
  };
  // The status comes in the trailers, or in the headers of a "trailers-only" refusal.
  stream.once("response", (headers) => {
    if (headers["grpc-status"] !== undefined) note(headers);
  });
  stream.once("trailers", note);
}

/** How the attack's streams stood at its end: by gRPC status, reset code, or still open. */
function tally(streams: http2.ClientHttp2Stream[], statuses: Statuses): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const stream of streams) {
    const key = statuses.get(stream) ?? (stream.closed ? `reset ${stream.rstCode}` : "open, no status");
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** How the attack's streams stood at its end, and how to drop its connection. */
interface Attacked {
  readonly streams: Record<string, number>;
  close(): void;
}

async function noTokenAttack(daemon: Daemon): Promise<Attacked> {
  const session = attackerSession(daemon.url);
  const streams: http2.ClientHttp2Stream[] = [];
  const statuses: Statuses = new Map();
  for (let i = 0; i < NO_TOKEN_STREAMS; i++) {
    const stream = grpcRequest(session, "Launch");
    collectStatus(stream, statuses);
    // The same buffer each time: the attacker's own memory stays small.
    stream.write(ONE_MB);
    streams.push(stream);
  }
  await sleep(ATTACK_MS);
  const outcome = tally(streams, statuses);
  return { streams: outcome, close: () => session.destroy() };
}

async function watchAttack(daemon: Daemon): Promise<Attacked> {
  const session = attackerSession(daemon.url);
  // A job on a queue no worker takes: watching it never ends by itself.
  const launch = grpcRequest(session, "Launch", daemon.token);
  const chunks: Buffer[] = [];
  launch.on("data", (chunk: Buffer) => chunks.push(chunk));
  const parked = create(LaunchRequestSchema, { handler: "ferry.echo", options: { queue: "parked" } });
  launch.end(grpcFrame(toBinary(LaunchRequestSchema, parked)));
  await new Promise((done) => launch.once("close", done));
  const { handle } = fromBinary(LaunchResponseSchema, Buffer.concat(chunks).subarray(5));
  const watch = grpcFrame(toBinary(HandleRequestSchema, create(HandleRequestSchema, { handle })));
  const streams: http2.ClientHttp2Stream[] = [];
  const statuses: Statuses = new Map();
  let watching = 0;
  for (let i = 0; i < WATCH_STREAMS; i++) {
    const stream = grpcRequest(session, "Watch", daemon.token);
    collectStatus(stream, statuses);
    stream.once("data", () => {
      watching += 1;
    });
    stream.end(watch);
    streams.push(stream);
  }
  await sleep(ATTACK_MS);
  const outcome = { ...tally(streams, statuses), "watching (had a status)": watching };
  return { streams: outcome, close: () => session.destroy() };
}

/** The slowest and the median of some /healthz times, in ms. */
function healthzFigures(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    probes: sorted.length,
    maxMs: Math.round(sorted.at(-1) ?? Number.NaN),
    medianMs: Math.round(sorted[Math.floor(sorted.length / 2)] ?? Number.NaN),
  };
}

async function measure(name: string, attack: (daemon: Daemon) => Promise<Attacked>) {
  const daemon = await startDaemon();
  try {
    const pid = daemon.child.pid!;
    // Settle: the first calls load code the attack would otherwise be charged for.
    await idleHealthz(daemon.url, 5);
    await sleep(1_500);
    const beforeRssMb = rssMb(pid);
    const idleHealthzMs = Math.round(Math.max(...(await idleHealthz(daemon.url, 3))));
    const duringPeak = rssSampler(pid);
    const duringProbes = healthzProber(daemon.url);
    const { streams, close } = await attack(daemon);
    const during = {
      peakRssMb: duringPeak(),
      endRssMb: rssMb(pid),
      healthz: healthzFigures(await duringProbes()),
    };
    // The attacker drops its connection with everything open (and, for Watch, 2,900 streams
    // queued behind the stream limit): what the daemon does as it cleans up, for 2 s.
    const closePeak = rssSampler(pid);
    const closeProbes = healthzProber(daemon.url);
    close();
    await sleep(2_000);
    const afterClose = {
      peakRssMb: closePeak(),
      endRssMb: rssMb(pid),
      healthz: healthzFigures(await closeProbes()),
    };
    const rssDeltaMb = Math.max(during.peakRssMb, afterClose.peakRssMb) - beforeRssMb;
    const healthzMaxMs = Math.max(during.healthz.maxMs, afterClose.healthz.maxMs);
    return {
      attack: name,
      beforeRssMb,
      idleHealthzMs,
      during,
      afterClose,
      streams,
      rssDeltaMb,
      healthzMaxMs,
      target: {
        rule: `peak RSS - before < ${TARGET.rssDeltaMb} MB and /healthz max < ${TARGET.healthzMs} ms`,
        met: rssDeltaMb < TARGET.rssDeltaMb && healthzMaxMs < TARGET.healthzMs,
      },
    };
  } finally {
    daemon.stop();
  }
}

const attacks = { "no-token": noTokenAttack, watches: watchAttack } as const;
const chosen = flags.only === undefined ? Object.keys(attacks) : flags.only.split(",");
const results = [];
for (const name of chosen) {
  const attack = attacks[name as keyof typeof attacks];
  if (attack === undefined) throw new Error(`attack-memory: no attack "${name}"`);
  process.stderr.write(`attack-memory: ${name} against ${ROOT} for ${ATTACK_MS / 1000} s\n`);
  results.push(await measure(name, attack));
}
process.stdout.write(`${JSON.stringify({ root: ROOT, node: process.version, results }, null, 2)}\n`);
