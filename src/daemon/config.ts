/**
 * Loads the daemon's configuration: defaults, then the TOML file (`--config`), then environment
 * variables `FERRY_SECTION__KEY`, then command-line flags. Every mistake is FERRY_INVALID_ARGUMENT
 * naming the key, and for the file its line; nothing is ignored.
 */
import { readFileSync } from "node:fs";
import { parse, stringify, TomlError } from "smol-toml";
import type { z } from "zod";
import { FerryError, invalidArgument } from "../core/errors.js";
import { configSchema, type DaemonConfig } from "./config-schema.js";

/** Raw values by section and key, before the schema: what each layer contributes. */
type Layer = Record<string, Record<string, unknown>>;

export interface ConfigSources {
  /** A TOML file; absent: defaults and the other layers only. */
  readonly file?: string | undefined;
  /** Usually process.env; only FERRY_<SECTION>__<KEY> names are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** From flags (`--port 5000`), by section and key: applied last. */
  readonly overrides?: Layer;
}

const ENV_NAME = /^FERRY_([A-Z0-9]+)__([A-Z0-9_]+)$/;

export function loadConfig(sources: ConfigSources = {}): DaemonConfig {
  const text = sources.file === undefined ? undefined : readConfigFile(sources.file);
  const fromFile = text === undefined ? {} : parseToml(text, sources.file!);
  const fromEnv = envLayer(sources.env ?? {});
  const overrides = sources.overrides ?? {};
  const merged = mergeLayers(fromFile, fromEnv, overrides);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw configError(parsed.error, text, sources.file, fromEnv);
  refuseBothTwins(merged, (section, key) => {
    if (overrides[section]?.[key] !== undefined) return "a command-line flag";
    if (fromEnv[section]?.[key] !== undefined)
      return section === "store" && key === "url" && sources.env?.FERRY_STORE__URL === undefined
        ? "FERRY_STORE"
        : `FERRY_${section.toUpperCase()}__${key.toUpperCase()}`;
    return sources.file ?? "config";
  });
  return readSecretFiles(parsed.data);
}

/**
 * Keys that hold a secret, each with a `_file` twin naming a file to read it from instead, so the
 * secret need not sit in the config file or in the environment (where any process of the same user
 * can read it from /proc/PID/environ).
 */
const SECRET_KEYS = [
  ["store", "url"],
  ["sql", "url"],
] as const;

/** A key and its `_file` twin exclude each other: which one wins would be a guess. */
function refuseBothTwins(merged: Layer, origin: (section: string, key: string) => string): void {
  for (const [section, key] of SECRET_KEYS) {
    const values = merged[section];
    const file = values?.[`${key}_file`];
    if (values?.[key] === undefined || file === undefined || file === "") continue;
    throw invalidArgument(
      `${section}.${key} (from ${origin(section, key)}) and ${section}.${key}_file ` +
        `(from ${origin(section, `${key}_file`)}) are both set: set one`,
      { key: `${section}.${key}_file` },
    );
  }
}

/** The secrets named by `_file` keys, read now: the file's text without its trailing newline. */
function readSecretFiles(config: DaemonConfig): DaemonConfig {
  const read = (key: string, file: string): string => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw invalidArgument(`${key}: cannot read ${file}${typeof code === "string" ? ` (${code})` : ""}`, {
        key,
      });
    }
    const value = text.replace(/(\r?\n)+$/, "");
    if (value === "") throw invalidArgument(`${key}: ${file} is empty`, { key });
    return value;
  };
  const { store, sql } = config;
  return {
    ...config,
    store: store.url_file === "" ? store : { ...store, url: read("store.url_file", store.url_file) },
    sql: sql.url_file === "" ? sql : { ...sql, url: read("sql.url_file", sql.url_file) },
  };
}

function readConfigFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw invalidArgument(
      `cannot read the config file ${path}${typeof code === "string" ? ` (${code})` : ""}`,
    );
  }
}

function parseToml(text: string, file: string): Layer {
  try {
    return parse(text) as Layer;
  } catch (error) {
    if (error instanceof TomlError) {
      throw new FerryError("FERRY_INVALID_ARGUMENT", `${file}:${error.line}: ${firstLine(error.message)}`, {
        details: { file, line: error.line },
      });
    }
    throw error;
  }
}

/**
 * `FERRY_SERVER__AUTH_ENABLED=false` → server.auth_enabled = false. A value is read as a TOML value
 * when it is one (`false`, `5000`, `["a","b"]`), else as a plain string (`sqlite:./x.db`).
 */
function envLayer(env: Readonly<Record<string, string | undefined>>): Layer {
  const layer: Layer = {};
  for (const [name, raw] of Object.entries(env)) {
    const match = ENV_NAME.exec(name);
    if (match === null || raw === undefined) continue;
    const section = match[1]!.toLowerCase();
    const key = match[2]!.toLowerCase();
    layer[section] = { ...layer[section], [key]: tomlValue(raw) };
  }
  // The library's own variable for the store (Ferry.open), so that a daemon, a worker and a program
  // started in one environment share one store. FERRY_STORE__URL wins when both are set.
  const store = env.FERRY_STORE;
  if (store !== undefined && layer.store?.url === undefined) layer.store = { ...layer.store, url: store };
  return layer;
}

function tomlValue(raw: string): unknown {
  try {
    return (parse(`v = ${raw}`) as { v: unknown }).v;
  } catch {
    return raw;
  }
}

function mergeLayers(...layers: Layer[]): Layer {
  const merged: Layer = {};
  for (const layer of layers) {
    for (const [section, values] of Object.entries(layer)) {
      // A key that is not a table (`store = 1`) is left for the schema to refuse.
      if (values === null || typeof values !== "object" || Array.isArray(values)) {
        (merged as Record<string, unknown>)[section] = values;
        continue;
      }
      merged[section] = { ...(merged[section] ?? {}), ...values };
    }
  }
  return merged;
}

/** The first issue, as `file:line: section.key: what is wrong` (or the environment variable). */
function configError(error: z.ZodError, text: string | undefined, file: string | undefined, fromEnv: Layer) {
  const issue = error.issues[0]!;
  const path = issue.path.map(String);
  // An unknown key is reported at the key itself, not at its table.
  const keys = issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...path, k]) : [path];
  const key = keys[0]!;
  const dotted = key.join(".");
  const what = issue.code === "unrecognized_keys" ? "unknown key" : issue.message;
  const [section, name] = key;
  const fromEnvName =
    section !== undefined && name !== undefined && fromEnv[section]?.[name] !== undefined
      ? `FERRY_${section.toUpperCase()}__${name.toUpperCase()}`
      : undefined;
  const line = fromEnvName === undefined && text !== undefined ? lineOf(text, key) : undefined;
  const where =
    fromEnvName ?? (file === undefined ? "config" : line === undefined ? file : `${file}:${line}`);
  return new FerryError("FERRY_INVALID_ARGUMENT", `${where}: ${dotted}: ${what}`, {
    details: {
      key: dotted,
      ...(line === undefined ? {} : { line }),
      ...(fromEnvName ? { env: fromEnvName } : {}),
    },
  });
}

/**
 * The line where `section.key` is set, for the plain TOML a config file holds (`[section]` tables,
 * `key = value`); undefined when it cannot tell (then the message names the key alone).
 */
export function lineOf(text: string, key: readonly string[]): number | undefined {
  const [section, name] = key;
  let table = "";
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const header = /^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(line);
    if (header !== null) {
      table = header[1]!;
      if (name === undefined && table === section) return i + 1;
      continue;
    }
    const assignment = /^\s*([A-Za-z0-9_-]+)\s*=/.exec(line);
    if (assignment === null) continue;
    if (name === undefined && table === "" && assignment[1] === section) return i + 1;
    if (table === section && assignment[1] === name) return i + 1;
  }
  return undefined;
}

const firstLine = (message: string): string => message.split("\n")[0] ?? message;

/** Query parameters whose value is a secret in a store or database URL. */
const SECRET_PARAMS = /^(password|pass|token|secret|sslkey|sslpassword)$/i;

/**
 * A URL with its secrets replaced by `***`: the password, a NATS token (the user part of
 * `nats://TOKEN@host` with no password), and secret query parameters. Not a URL: shown as it is.
 */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (url.password !== "") url.password = "***";
  else if (url.username !== "" && /^(nats|tls):$/.test(url.protocol)) url.username = "***";
  for (const name of [...url.searchParams.keys()])
    if (SECRET_PARAMS.test(name)) url.searchParams.set(name, "***");
  return url.href.replaceAll("%2A%2A%2A", "***");
}

/**
 * The effective configuration as TOML, secrets hidden: what `ferry daemon --print-config` shows. A
 * URL read from a `_file` key is shown as that key alone, the file's path.
 */
export function printConfig(config: DaemonConfig): string {
  const shownUrl = <T extends { url: string; url_file: string }>({ url, ...rest }: T) =>
    rest.url_file === "" ? { url: redactUrl(url), ...rest } : rest;
  const shown = { ...config, store: shownUrl(config.store), sql: shownUrl(config.sql) };
  return `${stringify(shown)}\n`;
}
