/**
 * `ferry/client`: the library's caller side over a daemon, for a process that holds no store.
 * Every exported name is listed here or in src/shared-exports.ts (the names `ferry` exports too);
 * loading it loads no store driver.
 *
 * ```ts
 * import { connect } from "ferry/client";
 * const ferry = await connect({ server: "https://jobs.example:50051", token });
 * const h = await ferry.launch(sendEmail, { to: "a@example.com" });
 * ```
 */
import { openConnection } from "./client/connection.js";
import { FerryClient } from "./client/ferry-client.js";
import { type ConnectOptions, resolveConnectOptions } from "./client/options.js";

/**
 * A client for the daemon at `server` (FERRY_SERVER, else http://127.0.0.1:50051) with `token`
 * (FERRY_TOKEN). Nothing is sent until the first call: a daemon that is not up yet is no error
 * here, and the connection is made again after a daemon restart.
 */
export async function connect(options: ConnectOptions = {}): Promise<FerryClient> {
  const resolved = resolveConnectOptions(options);
  return new FerryClient(await openConnection(resolved), resolved.resumeForMs);
}

export type { FerryClient, RemoteLaunchItem, RemoteWaitOptions } from "./client/ferry-client.js";
export type { ClientTlsOptions, ConnectOptions } from "./client/options.js";
export type { RemoteScheduleOptions, RemoteSchedules, ScheduleChange } from "./client/remote-schedules.js";
export type { RemoteLaunchOptions } from "./client/to-proto.js";
export * from "./shared-exports.js";
