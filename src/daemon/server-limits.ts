/**
 * What the server may be made to hold, from the daemon's config: the largest body, the body bytes
 * in flight, streams per HTTP/2 connection and header size, and who may send a body at all
 * (callers with a good token, when authentication is on).
 */
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { type Admit, tokenAdmission } from "./admission.js";
import type { Caller } from "./authn.js";
import { BodyBudget } from "./body-budget.js";
import { type DaemonConfig, REQUEST_OVERHEAD_BYTES } from "./config-schema.js";
import type { ServerOptions } from "./server.js";

type ServerLimits = Pick<ServerOptions, "maxRequestBytes" | "admit" | "bodyBudget" | "streamLimits">;

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
  const admit: Admit | undefined =
    authenticate === undefined ? undefined : tokenAdmission(authenticate, [Health.typeName]);
  return {
    maxRequestBytes: limits.max_payload_bytes + REQUEST_OVERHEAD_BYTES,
    admit,
    bodyBudget: new BodyBudget({
      perConnection: limits.max_body_bytes_per_connection,
      perDaemon: limits.max_body_bytes_in_flight,
    }),
    streamLimits: {
      maxStreamsPerConnection: server.max_streams_per_connection,
      maxHeaderBytes: server.max_header_bytes,
    },
  };
}
