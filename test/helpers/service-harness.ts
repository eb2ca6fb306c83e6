/**
 * What the service tests share: the things a test opened, closed after it (last first); a Ferry on
 * a fresh SQLite store; a client of one service over Connect's in-memory transport; and how a call
 * failed.
 */
import type { DescService } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type ServiceImpl,
} from "@connectrpc/connect";
import { afterEach } from "vitest";
import { Ferry } from "../../src/index.js";
import { tempDir } from "./temp.js";

export type Cleanups = (() => Promise<void> | void)[];

/** A list a test pushes its closers on; an afterEach of the calling `describe` runs them, last first. */
export function cleanupsAfterEach(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}

/** A Ferry on a SQLite store in a fresh folder; both go with `cleanups`. */
export async function sqliteFerry(cleanups: Cleanups): Promise<Ferry> {
  const dir = tempDir();
  cleanups.push(() => dir.remove());
  const ferry = await Ferry.open({ store: `sqlite:${dir.path}/ferry.db` });
  cleanups.push(() => ferry.close());
  return ferry;
}

/** A client of `service`, served by `impl` in memory. */
export function inMemoryClient<S extends DescService>(service: S, impl: ServiceImpl<S>): Client<S> {
  return createClient(
    service,
    createRouterTransport(({ service: serve }) => serve(service, impl)),
  );
}

/** The Ferry error code a call failed with ("ok" when it did not fail), with its RPC code. */
export async function failure(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    const e = ConnectError.from(error);
    return `${Code[e.code]}/${e.metadata.get("ferry-error-code")}`;
  }
  return "ok";
}
