/**
 * Ferry's NATS store URL, parsed into what the connection layer needs:
 *
 *   nats://[user:pass@ | token@]host[:port][,host2[:port]…][?prefix=…&replicas=…&tls=1&ca=…&cert=…&key=…&creds=…&nkey=…&name=…]
 *
 * `tls://` is the same with TLS on. The v3 client ignores credentials inside server URLs, so they
 * are taken out here and passed as options. Refusal messages never quote the URL's secrets.
 */
import { invalidArgument } from "../../core/errors.js";

export type NatsAuth =
  | { readonly kind: "none" }
  | { readonly kind: "userpass"; readonly user: string; readonly pass: string }
  | { readonly kind: "token"; readonly token: string }
  | { readonly kind: "creds"; readonly file: string }
  | { readonly kind: "nkey"; readonly seedFile: string };

/** TLS on; without `caFile` the server's certificate is checked against the system's trust store. */
export interface NatsTls {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface NatsStoreConfig {
  /** `host:port` each (`[v6addr]:port` for IPv6), port 4222 unless given. */
  readonly servers: readonly string[];
  /** Names every stream, bucket and subject of this installation (several can share a cluster). */
  readonly prefix: string;
  /** Copies of each stream and bucket (1..5). */
  readonly replicas: number;
  readonly auth: NatsAuth;
  readonly tls: NatsTls | undefined;
  /** The connection's name as the server's monitoring shows it. */
  readonly name?: string;
}

export const DEFAULT_NATS_PORT = 4222;
export const DEFAULT_NATS_PREFIX = "ferry";
const PREFIX_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const MAX_REPLICAS = 5;
const KNOWN_PARAMETERS = ["prefix", "replicas", "tls", "ca", "cert", "key", "creds", "nkey", "name"] as const;
type Parameter = (typeof KNOWN_PARAMETERS)[number];

const SCHEME = /^(nats|tls):\/\//i;
const HOST_NAME = /^[A-Za-z0-9._-]+$/;
const IPV6_HOST = /^\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\]$/;

export function parseNatsStoreUrl(url: string): NatsStoreConfig {
  if (typeof url !== "string") throw invalidArgument("nats store URL must be a string");
  const scheme = SCHEME.exec(url);
  if (scheme === null) throw invalidArgument("nats store URL must start with nats:// or tls://");
  const mention = mentionGuard(url, scheme[0].length);
  const rest = url.slice(scheme[0].length);

  if (rest.includes("#")) throw invalidArgument("nats store URL must not have a #fragment");
  const queryAt = rest.indexOf("?");
  let authority = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const query = queryAt === -1 ? "" : rest.slice(queryAt + 1);
  // A lone trailing slash is harmless; any other path means something we would silently ignore.
  const pathAt = authority.indexOf("/");
  if (pathAt !== -1) {
    if (pathAt !== authority.length - 1) {
      throw invalidArgument("nats store URL must not have a path (put settings in ?parameters)");
    }
    authority = authority.slice(0, pathAt);
  }

  const at = authority.lastIndexOf("@");
  const userInfo = at === -1 ? undefined : authority.slice(0, at);
  const servers = parseServers(at === -1 ? authority : authority.slice(at + 1), mention);
  const parameters = parseQuery(query, mention);

  const auth = chooseAuth(userInfo, parameters);
  const tls = chooseTls(scheme[1]?.toLowerCase() === "tls", parameters, mention);
  const config: NatsStoreConfig = {
    servers,
    prefix: parsePrefix(parameters.get("prefix"), mention),
    replicas: parseReplicas(parameters.get("replicas"), mention),
    auth,
    tls,
  };
  const name = parameters.get("name");
  if (name === undefined) return config;
  if (name.length > 256 || /\p{Cc}/u.test(name)) {
    throw invalidArgument("?name= in the nats store URL must be at most 256 printable characters");
  }
  return { ...config, name };
}

/**
 * The store URL with its password or token replaced by `***`, for logs. Never throws, whatever
 * the input; `user:pass@` keeps the user name.
 */
export function redactNatsUrl(url: string): string {
  const text = String(url);
  const start = text.indexOf("://");
  if (start === -1) return text;
  // The last '@' of all: a password with an unescaped '/' or '?' still ends there. A query value
  // holding an '@' (name=a@b) makes this hide too much, never too little.
  const at = text.lastIndexOf("@");
  if (at <= start) return text;
  const userInfo = text.slice(start + 3, at);
  const colon = userInfo.indexOf(":");
  const shown = colon === -1 ? "***" : `${userInfo.slice(0, colon)}:***`;
  return `${text.slice(0, start + 3)}${shown}${text.slice(at)}`;
}

/**
 * Quotes a piece of the URL in an error message only when it cannot be part of the credentials:
 * anything that could lie inside the user-info (from `//` to the last `@` of the whole URL, raw
 * or decoded) is described, not quoted. This holds even when a password with an unescaped `/`,
 * `?` or `,` makes the URL split in the wrong places.
 */
type Mention = (piece: string) => string;

function mentionGuard(url: string, afterScheme: number): Mention {
  const lastAt = url.lastIndexOf("@");
  const suspect = lastAt === -1 ? "" : url.slice(afterScheme, lastAt);
  const suspectDecoded = safeDecode(suspect) ?? suspect;
  return (piece) => {
    if (piece.length === 0) return "an empty value";
    const couldBeSecret = piece.includes("@") || suspect.includes(piece) || suspectDecoded.includes(piece);
    if (couldBeSecret) return "<not shown: it may be part of the credentials>";
    return JSON.stringify(piece.length > 64 ? `${piece.slice(0, 64)}…` : piece);
  };
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function parseServers(hosts: string, mention: Mention): string[] {
  if (hosts.length === 0)
    throw invalidArgument("nats store URL names no server (e.g. nats://127.0.0.1:4222)");
  return hosts.split(",").map((entry) => parseHostPort(entry, mention));
}

function parseHostPort(entry: string, mention: Mention): string {
  // "[::1]:4222": the port follows the bracket; "host:4222": the only colon.
  const bracketEnd = entry.startsWith("[") ? entry.indexOf("]") : -1;
  const colon = entry.indexOf(":", bracketEnd === -1 ? 0 : bracketEnd);
  const host = colon === -1 ? entry : entry.slice(0, colon);
  const portText = colon === -1 ? undefined : entry.slice(colon + 1);
  if (host.length === 0) throw invalidArgument("nats store URL has an empty host name");
  if (!HOST_NAME.test(host) && !IPV6_HOST.test(host)) {
    throw invalidArgument(`nats store URL has an invalid host name: ${mention(host)}`);
  }
  if (portText === undefined) return `${host}:${DEFAULT_NATS_PORT}`;
  if (portText.length === 0) throw invalidArgument("nats store URL has an empty port after ':'");
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65_535)) {
    throw invalidArgument(`nats store URL has an invalid port ${mention(portText)}; ports are 1 to 65535`);
  }
  return `${host}:${port}`;
}

function parseQuery(query: string, mention: Mention): Map<Parameter, string> {
  const parameters = new Map<Parameter, string>();
  if (query.length === 0) return parameters;
  for (const pair of query.split("&")) {
    if (pair.length === 0) continue;
    const equals = pair.indexOf("=");
    const rawName = equals === -1 ? pair : pair.slice(0, equals);
    const name = safeDecode(rawName);
    if (name === undefined || !isKnownParameter(name)) {
      throw invalidArgument(
        `nats store URL has an unknown parameter ${mention(rawName)} (known: ${KNOWN_PARAMETERS.join(", ")})`,
      );
    }
    if (parameters.has(name)) throw invalidArgument(`nats store URL gives ?${name}= twice`);
    // Decoded without turning '+' into a space: these are file paths and names, not form data.
    const value = equals === -1 ? "" : safeDecode(pair.slice(equals + 1));
    if (value === undefined)
      throw invalidArgument(`?${name}= in the nats store URL is not valid percent-encoding`);
    if (value.length === 0) throw invalidArgument(`?${name}= in the nats store URL is empty`);
    parameters.set(name, value);
  }
  return parameters;
}

const isKnownParameter = (name: string): name is Parameter =>
  (KNOWN_PARAMETERS as readonly string[]).includes(name);

function chooseAuth(userInfo: string | undefined, parameters: Map<Parameter, string>): NatsAuth {
  const offered: NatsAuth[] = [];
  if (userInfo !== undefined) offered.push(parseUserInfo(userInfo));
  const creds = parameters.get("creds");
  if (creds !== undefined) offered.push({ kind: "creds", file: creds });
  const seedFile = parameters.get("nkey");
  if (seedFile !== undefined) offered.push({ kind: "nkey", seedFile });
  const [first, second] = offered;
  if (second !== undefined) {
    const kinds = offered.map((auth) => AUTH_LABEL[auth.kind]).join(" and ");
    throw invalidArgument(`nats store URL gives two ways to log in (${kinds}): keep one`);
  }
  return first ?? { kind: "none" };
}

const AUTH_LABEL: Record<NatsAuth["kind"], string> = {
  none: "none",
  userpass: "user and password",
  token: "token",
  creds: "?creds=",
  nkey: "?nkey=",
};

/** `user:pass` is a user and password, a lone `token` is a token; both percent-decoded. */
function parseUserInfo(userInfo: string): NatsAuth {
  const colon = userInfo.indexOf(":");
  if (colon === -1) {
    const token = safeDecode(userInfo);
    if (token === undefined)
      throw invalidArgument("the token in the nats store URL is not valid percent-encoding");
    if (token.length === 0)
      throw invalidArgument("the token in the nats store URL is empty (nothing before '@')");
    return { kind: "token", token };
  }
  const user = safeDecode(userInfo.slice(0, colon));
  const pass = safeDecode(userInfo.slice(colon + 1));
  if (user === undefined)
    throw invalidArgument("the user name in the nats store URL is not valid percent-encoding");
  if (pass === undefined)
    throw invalidArgument("the password in the nats store URL is not valid percent-encoding");
  if (user.length === 0) throw invalidArgument("the user name in the nats store URL is empty");
  if (pass.length === 0) throw invalidArgument("the password in the nats store URL is empty");
  return { kind: "userpass", user, pass };
}

/** TLS is on with `tls://`, `?tls=1` or any of `?ca=`, `?cert=`, `?key=` (a file only makes sense with TLS). */
function chooseTls(
  schemeSaysTls: boolean,
  parameters: Map<Parameter, string>,
  mention: Mention,
): NatsTls | undefined {
  const flag = parameters.get("tls");
  let asked: boolean | undefined;
  if (flag !== undefined) {
    if (flag === "1" || flag === "true") asked = true;
    else if (flag === "0" || flag === "false") asked = false;
    else throw invalidArgument(`?tls= in the nats store URL must be 1 or 0, not ${mention(flag)}`);
  }
  const caFile = parameters.get("ca");
  const certFile = parameters.get("cert");
  const keyFile = parameters.get("key");
  const files = caFile !== undefined || certFile !== undefined || keyFile !== undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw invalidArgument(
      "nats store URL needs ?cert= and ?key= together (a client certificate and its key)",
    );
  }
  if (asked === false && (schemeSaysTls || files)) {
    throw invalidArgument(
      "nats store URL says ?tls=0 but also asks for TLS (tls:// or a ?ca=/?cert=/?key= file)",
    );
  }
  if (!(schemeSaysTls || asked === true || files)) return undefined;
  return {
    ...(caFile === undefined ? {} : { caFile }),
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
  };
}

function parsePrefix(value: string | undefined, mention: Mention): string {
  if (value === undefined) return DEFAULT_NATS_PREFIX;
  if (!PREFIX_PATTERN.test(value)) {
    throw invalidArgument(
      `?prefix= in the nats store URL must be 1 to 32 letters, digits, _ or -, not ${mention(value)}`,
    );
  }
  return value;
}

function parseReplicas(value: string | undefined, mention: Mention): number {
  if (value === undefined) return 1;
  const replicas = /^\d{1,2}$/.test(value) ? Number(value) : Number.NaN;
  if (!(replicas >= 1 && replicas <= MAX_REPLICAS)) {
    throw invalidArgument(
      `?replicas= in the nats store URL must be 1 to ${MAX_REPLICAS}, not ${mention(value)}`,
    );
  }
  return replicas;
}
