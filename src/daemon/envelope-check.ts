/**
 * The frames of an enveloped body (gRPC, gRPC-Web, Connect streaming): a flags byte, a 4-byte
 * big-endian length, then that many bytes.
 *
 * The guard must agree with Connect on which frames are messages, or a message can slip past the
 * strict checks. Connect skips a frame only when it carries its protocol's end flag (Connect
 * streaming: end-of-stream 0x02; gRPC-Web: trailers 0x80; gRPC has none) and decodes every other
 * frame as a message whatever its other bits. So here a message frame must have flags 0x00, the
 * end frame is allowed only where its protocol has one and only as the last frame, and any other
 * flags are invalid input. Every Ferry call takes exactly one message (they are unary or
 * server-streaming), so a body with none or several is refused here too, rather than by Connect
 * without a Ferry code.
 */

/** The flag bit of a compressed message (refused: a small body could unpack into a huge one). */
const COMPRESSED = 0x01;
/** Connect streaming's end-of-stream frame. */
export const CONNECT_END_STREAM = 0x02;
/** gRPC-Web's trailers frame. */
export const GRPC_WEB_TRAILERS = 0x80;

/**
 * Why an enveloped body is refused, or undefined when it is sound: one message, which passes
 * `check`, and `endFlag` (the protocol's end frame, if it has one) on at most the last frame.
 */
export function envelopedProblem(
  body: Uint8Array,
  endFlag: number | undefined,
  check: (message: Uint8Array) => string | undefined,
): string | undefined {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let messages = 0;
  for (let at = 0; at < body.length; ) {
    if (at + 5 > body.length) return "the body ends inside a message's frame";
    const flags = body[at]!;
    const end = at + 5 + view.getUint32(at + 1);
    if (end > body.length) return "the body ends inside a message";
    if (flags === 0) {
      messages += 1;
      if (messages > 1) return "the body holds more than one message";
      const problem = check(body.subarray(at + 5, end));
      if (problem !== undefined) return problem;
    } else if ((flags & COMPRESSED) !== 0) {
      return "compressed messages are not accepted";
    } else if (flags !== endFlag) {
      return `a frame with flags 0x${flags.toString(16).padStart(2, "0")} is not valid here`;
    } else if (end !== body.length) {
      return "an end-of-stream frame must be the last one";
    }
    at = end;
  }
  return messages === 0 ? "the body holds no message" : undefined;
}
