/** The IPC messages between throughput-procs and its worker processes (bench/scenarios/procs-child.ts). */

/** Parent to child. start / stop make one drain round (a child may see several); close ends it. */
export type ToChild = { readonly type: "start" } | { readonly type: "stop" } | { readonly type: "close" };

/**
 * Child to parent. `done` carries the jobs finished since the last one (batched per event-loop
 * turn); `stopped` the CPU time the child used since `start` (user + system).
 */
export type FromChild =
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly count: number }
  | { readonly type: "stopped"; readonly cpuMs: number }
  | { readonly type: "error"; readonly message: string };
