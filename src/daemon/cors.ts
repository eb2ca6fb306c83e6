/**
 * CORS for browsers calling the daemon (gRPC-Web, Connect JSON): only origins listed exactly in
 * `allowed_origins` get the headers that let a page read the answer; everyone else's preflight is
 * refused. Every answer says `Vary: Origin`, so a cache never hands one origin's answer to another.
 */
import { cors } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { ERROR_CODE_HEADER } from "./rpc-errors.js";

type Request = NodeRequest;
type Response = NodeResponse;

const ALLOW_METHODS = [...new Set([...cors.allowedMethods, "GET"])].join(", ");
const ALLOW_HEADERS = [...cors.allowedHeaders, "Authorization", "X-Api-Key"].join(", ");
const EXPOSE_HEADERS = [...cors.exposedHeaders, ERROR_CODE_HEADER, `Trailer-${ERROR_CODE_HEADER}`].join(", ");
/** How long a browser may reuse a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE = "7200";

/** Adds CORS headers to `response`; answers true when it answered a preflight itself. */
export function applyCors(allowed: ReadonlySet<string>, request: Request, response: Response): boolean {
  response.setHeader("Vary", "Origin");
  const origin = request.headers.origin;
  const isPreflight = request.method === "OPTIONS";
  if (typeof origin !== "string" || !allowed.has(origin)) {
    if (!isPreflight) return false;
    response.writeHead(403, { "content-type": "text/plain; charset=utf-8" });
    response.end("origin not allowed\n");
    return true;
  }
  response.setHeader("Access-Control-Allow-Origin", origin);
  if (!isPreflight) {
    response.setHeader("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    return false;
  }
  response.writeHead(204, {
    "Access-Control-Allow-Methods": ALLOW_METHODS,
    "Access-Control-Allow-Headers": ALLOW_HEADERS,
    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
  });
  response.end();
  return true;
}
