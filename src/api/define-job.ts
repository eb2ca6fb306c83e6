import type { Duration } from "../core/duration.js";
import { checkHandlerName } from "../core/names.js";
import type { Handler, JobDefinition, PayloadSchema } from "../worker/handler.js";

/**
 * Ties a handler name to its payload and result types, so `ferry.launch(def, payload)` type-checks
 * the payload and `worker({ handlers: [def] })` runs it with the payload already validated.
 */
export function defineJob<P, R>(definition: {
  name: string;
  schema?: PayloadSchema<P>;
  timeout?: Duration;
  attempts?: number;
  queue?: string;
  handler: Handler<P, R>;
}): JobDefinition<P, R> {
  checkHandlerName(definition.name);
  return Object.freeze({
    name: definition.name,
    schema: definition.schema,
    defaults: Object.freeze({
      ...(definition.timeout === undefined ? {} : { timeout: definition.timeout }),
      ...(definition.attempts === undefined ? {} : { attempts: definition.attempts }),
      ...(definition.queue === undefined ? {} : { queue: definition.queue }),
    }),
    handler: definition.handler,
  });
}
