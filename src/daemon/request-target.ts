/**
 * A request whose host (`Host`, or `:authority` over HTTP/2) or path a URL cannot be made of is
 * refused here, with 400 `FERRY_INVALID_ARGUMENT`, before anything else reads it. Connect builds
 * each call's URL with `new URL(path, "http://" + authority)` outside any handler: an authority
 * such as `localhost:99999` made that throw where nothing caught it, and one request with no token
 * took the daemon down. Parsing it the same way first means Connect never meets one it cannot.
 */
import { ErrorCode } from "../core/errors.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { ERROR_CODE_HEADER } from "./rpc-errors.js";
import { endWithAnswer } from "./stream-limits.js";

/** The authority Connect reads: HTTP/2's `:authority` (else its `Host`), HTTP/1.1's `Host`. */
function authorityOf(request: NodeRequest): string | undefined {
  return "authority" in request ? request.authority : request.headers.host;
}

/**
 * Whether Connect could build this request's URL: the very parse it makes (the scheme does not
 * change the rules: http and https are both "special"), so no spelling of a host, port or path
 * can pass here and throw there. It costs about a microsecond a call.
 */
export function isParsableTarget(request: NodeRequest): boolean {
  const authority = authorityOf(request);
  if (typeof authority !== "string") return false;
  try {
    new URL(request.url ?? "", `http://${authority}`);
    return true;
  } catch {
    return false;
  }
}

/** Answers a request whose URL cannot be parsed with 400, reading none of it; true when it did. */
export function refuseUnparsableTarget(request: NodeRequest, response: NodeResponse): boolean {
  if (isParsableTarget(request)) return false;
  // The body stays unread: the client must stop sending it (stream reset, or connection closed).
  endWithAnswer(request, response);
  response.writeHead(400, {
    "content-type": "application/json",
    [ERROR_CODE_HEADER]: ErrorCode.InvalidArgument,
  });
  response.end(
    JSON.stringify({ code: "invalid_argument", message: "the request's host or path cannot be parsed" }),
  );
  return true;
}
