/**
 * The daemon's configuration: every key of ../shared/SPEC.md's TOML with its default, as one strict
 * schema (an unknown key is an error, never ignored). docs/config.md describes each key.
 */
import { z } from "zod";
import {
  CANCEL_GRACE_MAX,
  CANCEL_GRACE_MAX_MS,
  DEFAULT_BIND_ADDRESS,
  DEFAULT_CONCURRENCY,
  DEFAULT_ERROR_MAX_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_PORT,
  DEFAULT_QUEUE,
  DEFAULT_STORE_URL,
  DEFAULT_TIMEOUT,
} from "../core/defaults.js";
import { parseDuration } from "../core/duration.js";
import { QUEUE_NAME } from "../core/names.js";
import { isHostName } from "./host-check.js";

/** "30s", "5m", "1h": kept as written (shown back by --print-config), checked here. */
const duration = (max?: number) =>
  z.string().superRefine((value, ctx) => {
    try {
      const ms = parseDuration(value, "duration");
      if (max !== undefined && ms > max) ctx.addIssue({ code: "custom", message: `at most ${max / 1000} s` });
    } catch {
      ctx.addIssue({
        code: "custom",
        message: `a duration like "30s" or "5m", got ${JSON.stringify(value)}`,
      });
    }
  });

const ONE_HOUR_MS = 3_600_000;
/** Room for a call's framing and options around its largest payload. */
export const REQUEST_OVERHEAD_BYTES = 64 * 1024;
const port = z.number().int().min(0).max(65_535);
const count = (min: number, max: number) => z.number().int().min(min).max(max);
/** Queue names are one subject token on NATS: the same rule everywhere (names.ts). */
const queueName = z.string().regex(QUEUE_NAME, "a queue name: letters, digits, _ and -");

export const configSchema = z.strictObject({
  store: z
    .strictObject({
      url: z.string().min(1).default(DEFAULT_STORE_URL),
      /** A file holding the URL instead (it may hold a password): see config.ts, secretFiles. */
      url_file: z.string().default(""),
    })
    .prefault({}),
  server: z
    .strictObject({
      bind_address: z.string().min(1).default(DEFAULT_BIND_ADDRESS),
      port: port.default(DEFAULT_PORT),
      auth_enabled: z.boolean().default(true),
      /** Exact origins allowed by CORS (`https://app.example.com`); none by default. */
      allowed_origins: z.array(z.url()).default([]),
      /** Host names (besides loopback ones) requests may be addressed to; see host-check.ts. */
      allowed_hosts: z
        .array(z.string().refine(isHostName, "a host name or IP address, without a port"))
        .default([]),
      /** Serve `/metrics` without a token with auth on (off by default: queue names and counts tell). */
      metrics_public: z.boolean().default(false),
      tls_cert: z.string().default(""),
      tls_key: z.string().default(""),
      /** Where the first start (auth on, no users yet) writes the admin token, mode 0600. */
      admin_token_file: z.string().min(1).default("./ferry-admin.token"),
      /** Handlers that only admins and users granted them (`ferry grant sql.exec USER`) may launch. */
      restricted_handlers: z
        .array(z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,200}$/, "a handler name like sql.exec"))
        .default(["sql.exec"]),
      /** Streams open at once on one HTTP/2 connection (more are refused: REFUSED_STREAM). */
      max_streams_per_connection: count(1, 10_000).default(100),
      /** A request's headers, HTTP/1.1 and HTTP/2 alike. */
      max_header_bytes: count(1024, 262_144).default(16_384),
      /** Connections open at once from one address; loopback is not counted (connection-caps.ts). */
      max_connections_per_address: count(1, 1_000_000).default(256),
    })
    .prefault({}),
  workers: z
    .strictObject({
      queues: z.array(queueName).min(1).default([DEFAULT_QUEUE]),
      concurrency: count(1, 10_000).default(DEFAULT_CONCURRENCY),
      max_running: count(1, 100_000).default(32),
      default_timeout: duration().default(DEFAULT_TIMEOUT),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_payload_bytes: count(1, 64 * 1024 * 1024).default(DEFAULT_MAX_PAYLOAD_BYTES),
      error_max_bytes: count(64, 65_536).default(DEFAULT_ERROR_MAX_BYTES),
      cancel_grace_max: duration(CANCEL_GRACE_MAX_MS).default(CANCEL_GRACE_MAX),
      launches_per_minute: count(1, 1_000_000).default(600),
      max_active_per_user: count(1, 10_000_000).default(1000),
      /** Request-body bytes held at once for one connection's calls, and for all of them. */
      max_body_bytes_per_connection: count(1, 2 ** 40).default(16 * 1024 * 1024),
      max_body_bytes_in_flight: count(1, 2 ** 40).default(64 * 1024 * 1024),
      /** The same for one user's calls over all their connections: no user takes the whole. */
      max_body_bytes_per_user: count(1, 2 ** 40).default(16 * 1024 * 1024),
      /** A request body with no byte received for this long is dropped and its bytes freed. */
      body_stall_timeout: duration(ONE_HOUR_MS).default("10s"),
      /** An answer whose unsent bytes do not go down for this long is reset (client not reading). */
      answer_stall_timeout: duration(ONE_HOUR_MS).default("30s"),
      /** Calls (not Watch or Wait) one user has in flight, counted until the answer has left. */
      max_calls_in_flight_per_user: count(1, 1_000_000).default(64),
      /** Watch streams and Wait calls one user holds open at once. */
      max_watches_per_user: count(1, 1_000_000).default(100),
    })
    .superRefine((limits, ctx) => {
      // Each budget must hold one request of the largest size, or such a request never fits.
      const largest = limits.max_payload_bytes + REQUEST_OVERHEAD_BYTES;
      for (const key of [
        "max_body_bytes_per_connection",
        "max_body_bytes_per_user",
        "max_body_bytes_in_flight",
      ] as const) {
        if (limits[key] < largest)
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: `at least max_payload_bytes + 65536 (${largest})`,
          });
      }
    })
    .prefault({}),
  plugins: z
    .strictObject({
      enabled: z.boolean().default(true),
      dirs: z.array(z.string().min(1)).default(["./plugins"]),
      isolation: z.enum(["process", "inline"]).default("process"),
      /** Who plugin processes run as: "" is `nobody` for a root daemon, itself otherwise. */
      user: z.string().default(""),
      /** Folders plugin processes may write to; none by default. */
      writable_dirs: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  sql: z
    .strictObject({
      url: z.string().default(""),
      url_file: z.string().default(""),
      statement_timeout: duration().default(DEFAULT_TIMEOUT),
      /** Let sql.exec run as a superuser or a role with server file/program access (warned at start). */
      allow_superuser: z.boolean().default(false),
    })
    .prefault({}),
});

export type DaemonConfig = z.output<typeof configSchema>;
export type ConfigSection = keyof DaemonConfig;
