/**
 * What the server may be made to hold, from the daemon's config: the largest body, the body bytes
 * in flight (per connection, per user, in all, and apart for open services), how long a body or an
 * answer may stall, calls in flight per user, connections per address, streams per HTTP/2
 * connection and header size, and who may send a body at all (callers with a good token, when
 * authentication is on).
 */

import { parseDuration } from "../core/duration.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { type Admit, tokenAdmission } from "./admission.js";
import type { Caller } from "./authn.js";
import { BodyBudget } from "./body-budget.js";
import { CallsInFlight } from "./calls-in-flight.js";
import { type DaemonConfig, REQUEST_OVERHEAD_BYTES } from "./config-schema.js";
import type { ServerOptions, ServerTimeouts } from "./server.js";

type ServerLimits = Pick<
  ServerOptions,
  | "maxRequestBytes"
  | "admit"
  | "bodyBudget"
  | "openBody"
  | "callsInFlight"
  | "longCalls"
  | "maxConnectionsPerAddress"
  | "streamLimits"
> & { readonly timeouts: Pick<ServerTimeouts, "bodyStallMs" | "answerStallMs"> };

/**
 * A call to an open service (the health protocol: `{"service": "…"}`) is tiny. Its own budget
 * keeps callers without a token out of the one callers with a token share: without it, 64 held
 * streams declaring 1 MiB each shut every Launch out.
 */
const OPEN_BODY = { maxBytes: 1024, perConnection: 64 * 1024, perDaemon: 1024 * 1024 } as const;

/** Long calls, bounded by `limits.max_watches_per_user` rather than calls in flight. */
const LONG_CALLS = new Set([
  `/${JobService.typeName}/Wait`,
  `/${JobService.typeName}/Watch`,
  `/${Health.typeName}/Watch`,
]);

/**
 * `authenticate` throws a FerryError for headers without a good token; undefined when
 * authentication is off (then every call is admitted).
 */
export function serverLimits(
  config: DaemonConfig,
  authenticate: ((headers: Headers, address: string) => Caller) | undefined,
): ServerLimits {
  const { limits, server } = config;
  // The health protocol is open to load balancers and probes, token or not.
  // With authentication off every other call is admitted, with no user to count.
  const admit: Admit = tokenAdmission(authenticate, [Health.typeName]);
  return {
    maxRequestBytes: limits.max_payload_bytes + REQUEST_OVERHEAD_BYTES,
    admit,
    bodyBudget: new BodyBudget({
      perConnection: limits.max_body_bytes_per_connection,
      perUser: limits.max_body_bytes_per_user,
      perDaemon: limits.max_body_bytes_in_flight,
    }),
    openBody: {
      maxBytes: OPEN_BODY.maxBytes,
      // No user: an open call carries no token to count it by.
      budget: new BodyBudget({ ...OPEN_BODY, perUser: OPEN_BODY.perDaemon }),
    },
    callsInFlight: new CallsInFlight(limits.max_calls_in_flight_per_user),
    longCalls: LONG_CALLS,
    maxConnectionsPerAddress: server.max_connections_per_address,
    timeouts: {
      bodyStallMs: parseDuration(limits.body_stall_timeout, "limits.body_stall_timeout"),
      answerStallMs: parseDuration(limits.answer_stall_timeout, "limits.answer_stall_timeout"),
    },
    streamLimits: {
      maxStreamsPerConnection: server.max_streams_per_connection,
      maxHeaderBytes: server.max_header_bytes,
    },
  };
}
