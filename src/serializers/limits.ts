import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import type { SizeLimits } from "./serializer.js";

/**
 * Containers (objects, arrays, tag wrappers, Sets) a payload may nest, counted on the wire so
 * that what one side encodes the other side accepts. Keeps recursive walks far from stack limits.
 */
export const MAX_DEPTH = 64;

/** Reads `limits.maxBytes`, refusing values that would silently disable the cap. */
export function readMaxBytes(limits: SizeLimits | undefined): number | undefined {
  const maxBytes = limits?.maxBytes;
  if (maxBytes === undefined) return undefined;
  if (typeof maxBytes !== "number" || Number.isNaN(maxBytes) || maxBytes < 0) {
    throw invalidArgument("maxBytes must be a non-negative number");
  }
  return maxBytes;
}

export function tooLarge(maxBytes: number, bytes?: number): FerryError {
  const size = bytes === undefined ? "payload is" : `payload is ${bytes} bytes,`;
  return new FerryError(ErrorCode.PayloadTooLarge, `${size} over the ${maxBytes}-byte limit`, {
    details: bytes === undefined ? { maxBytes } : { maxBytes, bytes },
  });
}

export function checkSize(bytes: number, maxBytes: number | undefined): void {
  if (maxBytes !== undefined && bytes > maxBytes) throw tooLarge(maxBytes, bytes);
}

/** Validates decode input and checks its size before any parser sees a byte of it. */
export function checkDecodeInput(bytes: unknown, limits: SizeLimits | undefined): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw invalidArgument("decode takes a Uint8Array");
  checkSize(bytes.byteLength, readMaxBytes(limits));
  return bytes;
}

export const serializationError = (message: string, cause?: unknown): FerryError =>
  new FerryError(ErrorCode.Serialization, message, cause === undefined ? undefined : { cause });
