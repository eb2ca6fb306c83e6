/**
 * Which host names a request may be addressed to (`Host` over HTTP/1.1, `:authority` over HTTP/2).
 *
 * With authentication off (allowed on loopback only) whatever reaches the port is served with
 * every right. A web page on an attacker's name can make that name resolve to 127.0.0.1 (DNS
 * rebinding); the browser then sends the page's requests to the daemon, same-origin, with the
 * attacker's name in `Host`. So with authentication off only loopback names (`localhost`,
 * `*.localhost`, 127.0.0.0/8, `[::1]`) and those listed in `server.allowed_hosts` are answered;
 * anything else gets 403 `FERRY_PERMISSION_DENIED` before a byte of its body is read.
 *
 * With authentication on, a rebinding page has no token to send (the dashboard keeps it in the
 * real origin's sessionStorage), so the check applies only when `allowed_hosts` lists names: then
 * it holds as a second wall, for loopback names and those. Without a list a daemon bound to a
 * network address answers whatever name its clients know it by.
 */
import { isIP } from "node:net";
import { ErrorCode } from "../core/errors.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { isLoopback } from "./loopback.js";
import { ERROR_CODE_HEADER } from "./rpc-errors.js";
import { endWithAnswer } from "./stream-limits.js";

/** The host names a daemon answers to besides loopback ones. */
export interface HostRule {
  readonly allowedHosts: ReadonlySet<string>;
}

/** The rule for a daemon's config; undefined when any host name is answered. */
export function hostRule(authEnabled: boolean, allowedHosts: readonly string[]): HostRule | undefined {
  if (authEnabled && allowedHosts.length === 0) return undefined;
  return { allowedHosts: new Set(allowedHosts.map(normalizeHostName)) };
}

/** Lower case, without IPv6 brackets or the root's trailing dot: one spelling per name. */
export function normalizeHostName(name: string): string {
  const lower = name.toLowerCase();
  const bare = lower.startsWith("[") && lower.endsWith("]") ? lower.slice(1, -1) : lower;
  return bare.endsWith(".") ? bare.slice(0, -1) : bare;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** Whether `name` is a DNS name or an IP address (IPv6 with or without brackets), with no port. */
export function isHostName(name: string): boolean {
  const host = normalizeHostName(name);
  return isIP(host) !== 0 || HOST_NAME.test(host);
}

/** Names that only ever lead to this machine: a page on another name cannot take them. */
export function isLoopbackHostName(host: string): boolean {
  // Browsers resolve *.localhost to loopback themselves (RFC 6761), so no one can rebind it.
  if (host === "localhost" || host.endsWith(".localhost")) return HOST_NAME.test(host);
  return isIP(host) !== 0 && isLoopback(host);
}

/** The host of a `Host` or `:authority` value (`name`, `name:port`, `[v6]:port`), or undefined. */
export function hostOfAuthority(authority: string): string | undefined {
  let host: string;
  let rest: string;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) return undefined;
    host = authority.slice(1, close);
    if (isIP(host) !== 6) return undefined;
    rest = authority.slice(close + 1);
  } else {
    const colon = authority.indexOf(":");
    host = colon < 0 ? authority : authority.slice(0, colon);
    rest = colon < 0 ? "" : authority.slice(colon);
  }
  // A port is 0-65535: a longer one parses nowhere else (Connect's URL would throw on it).
  if (rest !== "" && !(/^:[0-9]{1,5}$/.test(rest) && Number(rest.slice(1)) <= 65_535)) return undefined;
  const normalized = normalizeHostName(host);
  return isIP(normalized) !== 0 || HOST_NAME.test(normalized) ? normalized : undefined;
}

/** Whether a request naming `authority` is answered under `rule`. */
export function isAllowedAuthority(rule: HostRule, authority: string): boolean {
  const host = hostOfAuthority(authority);
  return host !== undefined && (isLoopbackHostName(host) || rule.allowedHosts.has(host));
}

/**
 * Answers a request addressed to a host name that `rule` does not allow with 403, reading none of
 * it; answers true when it did. Every name the request gives (`:authority` and `Host` may both
 * come over HTTP/2) must be allowed, and a request that gives none is refused.
 */
export function refuseForeignHost(
  rule: HostRule | undefined,
  request: NodeRequest,
  response: NodeResponse,
): boolean {
  if (rule === undefined) return false;
  const names = [request.headers[":authority"], request.headers.host].filter(
    (value): value is string => typeof value === "string",
  );
  if (names.length > 0 && names.every((name) => isAllowedAuthority(rule, name))) return false;
  // The body stays unread: the client must stop sending it (stream reset, or connection closed).
  endWithAnswer(request, response);
  response.writeHead(403, {
    "content-type": "application/json",
    [ERROR_CODE_HEADER]: ErrorCode.PermissionDenied,
  });
  response.end(
    JSON.stringify({
      code: "permission_denied",
      message:
        "this daemon answers only requests addressed to a loopback name or one in server.allowed_hosts",
    }),
  );
  return true;
}
