import { invalidArgument } from "./errors.js";

/**
 * Handler names are dotted identifiers ("email.send"): never a path or URL, so a name can't
 * reach a module loader or a file system.
 */
const handlerShape = /^[A-Za-z][A-Za-z0-9_-]{0,63}(\.[A-Za-z][A-Za-z0-9_-]{0,63}){0,7}$/;
/**
 * Queue names are safe as NATS subject tokens, stream names and SQL values: the one rule, for
 * the library and the daemon's configuration alike.
 */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkHandlerName(name: unknown): string {
  if (typeof name !== "string" || name.length > 200 || !handlerShape.test(name)) {
    throw invalidArgument('handler must be a dotted name like "email.send"');
  }
  return name;
}

export function checkQueueName(name: unknown): string {
  if (typeof name !== "string" || !QUEUE_NAME.test(name)) {
    throw invalidArgument("queue must be 1-64 characters of A-Z a-z 0-9 _ -");
  }
  return name;
}
