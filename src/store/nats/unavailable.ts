import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { jserrors } from "@nats-io/jetstream/internal";
import { errors } from "@nats-io/transport-node";
import { ErrorCode, FerryError } from "../../core/errors.js";
import type { Store } from "../store.js";

/** What the NATS client throws when the server or the link failed (not when Ferry asked wrongly). */
const UNAVAILABLE: readonly (abstract new (...args: never[]) => Error)[] = [
  errors.TimeoutError,
  errors.ConnectionError,
  errors.ClosedConnectionError,
  errors.DrainingConnectionError,
  errors.NoRespondersError,
  errors.RequestError,
  errors.AuthorizationError,
  errors.PermissionViolationError,
  JetStreamError,
  JetStreamApiError,
  // What the client says when no JetStream server answered (e.g. during a cluster's leader change).
  jserrors.JetStreamNotEnabled,
];

/** A NATS failure as Ferry's FERRY_STORE_UNAVAILABLE (the caller retries what is safe to retry). */
export function toStoreError(error: unknown): unknown {
  if (error instanceof FerryError) return error;
  if (!UNAVAILABLE.some((kind) => error instanceof kind)) return error;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new FerryError(ErrorCode.StoreUnavailable, `NATS did not complete the call (${reason})`, {
    cause: error,
  });
}

/**
 * The store with every call's NATS failure turned into FERRY_STORE_UNAVAILABLE, as the SQL stores
 * answer a lost connection: callers (the worker's back-off, the API) handle one code.
 */
export function withStoreErrors<S extends Store>(store: S): S {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        try {
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result instanceof Promise
            ? result.catch((error: unknown) => {
                throw toStoreError(error);
              })
            : result;
        } catch (error) {
          throw toStoreError(error);
        }
      };
    },
  });
}
