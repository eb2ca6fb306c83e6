/**
 * `npm run bench -- --only daemon-launch [--store sqlite|postgres|nats] [--jobs N] [--rounds N]`:
 * launches per second through the daemon (a child process, authentication on, as users run it),
 * over gRPC and over Connect JSON, each with 32 concurrent clients (a connection each), beside the
 * same store's in-process `ferry.launch` rate with 32 concurrent callers, measured in the same
 * run, the three taking turns in each round. The daemon's workers take another queue, so every
 * mode measures launching alone; quotas are raised out of the way.
 *
 * The goal: gRPC >= 30% of in-process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { JobService } from "../src/gen/ferry/v1/jobs_pb.js";
import { Ferry } from "../src/index.js";
import { benchPayload, freshStore, launchRate, median, startDaemonChild } from "./lib/daemon-child.js";
import { round } from "./lib/time.js";

export const CLIENTS = 32;
const MODES = ["in-process", "grpc", "connect-json"] as const;
type Mode = (typeof MODES)[number];
/** Launches over gRPC at least this share of the in-process rate. */
export const GOAL_GRPC_VS_IN_PROCESS = 0.3;

async function measure(mode: Mode, storeKind: string, total: number): Promise<number> {
  const store = freshStore(storeKind);
  const cwd = mkdtempSync(join(tmpdir(), "ferry-bench-daemon-cwd-"));
  try {
    if (mode === "in-process") {
      const ferry = await Ferry.open({ store: store.url });
      try {
        // The daemon's launches carry their user as owner; so do these.
        const options = { queue: "default", owner: "bench" };
        await launchRate(CLIENTS, CLIENTS, (_, n) => ferry.launch("ferry.echo", benchPayload(n), options)); // warm-up
        return await launchRate(total, CLIENTS, (_, n) =>
          ferry.launch("ferry.echo", benchPayload(n), options),
        );
      } finally {
        await ferry.close();
      }
    }
    const daemon = await startDaemonChild(store.url, cwd);
    try {
      const transports: Transport[] = Array.from({ length: CLIENTS }, () =>
        mode === "grpc"
          ? createGrpcTransport({ baseUrl: daemon.url })
          : createConnectTransport({ baseUrl: daemon.url, httpVersion: "1.1" }),
      );
      const clients: Client<typeof JobService>[] = transports.map((t) => createClient(JobService, t));
      const auth = { headers: { authorization: `Bearer ${daemon.token}` } };
      const launch = (client: number, n: number) =>
        clients[client]!.launch(
          { handler: "ferry.echo", payload: fromJson(ValueSchema, benchPayload(n)) },
          auth,
        );
      await launchRate(CLIENTS * 4, CLIENTS, launch); // warm-up: connections, JIT, the quota's first count
      return await launchRate(total, CLIENTS, launch);
    } finally {
      await daemon.stop();
    }
  } finally {
    await store.remove();
    rmSync(cwd, { recursive: true, force: true });
  }
}

export interface DaemonLaunchReport {
  readonly params: Readonly<Record<string, number | string>>;
  /** Median launches/s per mode, and every round's figure. */
  readonly results: Readonly<Record<Mode, { readonly launches_per_s: number; readonly rounds: number[] }>>;
  readonly ratios: { readonly grpc_vs_in_process: number; readonly connect_json_vs_in_process: number };
  readonly target: { readonly rule: string; readonly met: boolean };
}

export async function daemonLaunch(
  storeKind: string,
  total: number,
  rounds: number,
  log: (line: string) => void,
): Promise<DaemonLaunchReport> {
  const figures: Record<Mode, number[]> = { "in-process": [], grpc: [], "connect-json": [] };
  for (let r = 1; r <= rounds; r++) {
    for (const mode of MODES) {
      const rate = round(await measure(mode, storeKind, total), 1);
      figures[mode].push(rate);
      log(`[bench] daemon-launch / ${mode} (round ${r}/${rounds}): ${rate} launches/s`);
    }
  }
  const results = Object.fromEntries(
    MODES.map((mode) => [mode, { launches_per_s: median(figures[mode]), rounds: figures[mode] }]),
  ) as DaemonLaunchReport["results"];
  const base = results["in-process"].launches_per_s;
  const ratios = {
    grpc_vs_in_process: round(results.grpc.launches_per_s / base),
    connect_json_vs_in_process: round(results["connect-json"].launches_per_s / base),
  };
  return {
    params: { store: storeKind, jobs: total, clients: CLIENTS, rounds },
    results,
    ratios,
    target: {
      rule: `grpc_vs_in_process >= ${GOAL_GRPC_VS_IN_PROCESS}`,
      met: ratios.grpc_vs_in_process >= GOAL_GRPC_VS_IN_PROCESS,
    },
  };
}
