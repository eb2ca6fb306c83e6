import type { connectNodeAdapter } from "@connectrpc/connect-node";

/** The request and response of Connect's Node handler: HTTP/1.1's or HTTP/2's compatibility ones. */
type Adapter = ReturnType<typeof connectNodeAdapter>;
export type NodeRequest = Parameters<Adapter>[0];
export type NodeResponse = Parameters<Adapter>[1];
