/**
 * Hand-made requests to a daemon, below any client library: any `Host` or `:authority`, any
 * content type, frames with any flags. Each answer is read back into the gRPC/Connect status and
 * the `ferry-error-code` it carries, wherever its protocol puts them (HTTP status and headers,
 * Connect's end-of-stream frame, gRPC-Web's trailers frame, HTTP/2 trailers).
 */
import http from "node:http";
import http2 from "node:http2";

export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly trailers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** A frame of an enveloped body: flags, 4-byte big-endian length, message. */
export function frame(flags: number, message: Uint8Array | string): Buffer {
  const bytes = typeof message === "string" ? Buffer.from(message) : Buffer.from(message);
  const out = Buffer.alloc(5 + bytes.length);
  out[0] = flags;
  out.writeUInt32BE(bytes.length, 1);
  bytes.copy(out, 5);
  return out;
}

const flatten = (headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : String(value)]),
  );

/** An HTTP/1.1 request with exactly these headers (a `host` given here replaces Node's). */
export function http1(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array | string,
): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, method, path, headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: flatten(response.headers),
            trailers: flatten(response.trailers),
            body: Buffer.concat(chunks),
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body === undefined ? undefined : Buffer.from(body));
  });
}

/** An HTTP/2 request on a connection of its own (cleartext, prior knowledge, as gRPC does). */
export function http2Call(
  base: string,
  headers: http2.OutgoingHttpHeaders,
  body?: Uint8Array | string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(base);
    session.on("error", reject);
    const stream = session.request(headers);
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (head = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({
        status: Number(head[":status"] ?? 0),
        headers: flatten(head),
        trailers: flatten(trailers),
        body: Buffer.concat(chunks),
      });
    });
    stream.end(body === undefined ? undefined : Buffer.from(body));
  });
}

/** The gRPC code name and Ferry code an answer carries, read as its protocol frames them. */
export interface Outcome {
  readonly code: string;
  readonly ferryCode: string | undefined;
}

const GRPC_CODES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** The frames of an enveloped answer. */
function frames(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    out.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/** Connect unary: the HTTP status says whether it failed, the JSON body says how. */
export function connectUnaryOutcome(answer: RawAnswer): Outcome {
  const ferryCode = answer.headers["ferry-error-code"];
  if (answer.status === 200) return { code: "ok", ferryCode };
  const parsed = JSON.parse(answer.body.toString()) as { code?: string };
  return { code: parsed.code ?? `http ${answer.status}`, ferryCode };
}

/** Connect streaming: the last frame (flags 0x02) holds the end of the stream, error or not. */
export function connectStreamOutcome(answer: RawAnswer): Outcome {
  if (answer.status !== 200) return connectUnaryOutcome(answer);
  const end = frames(answer.body).find((f) => f.flags === 0x02);
  if (end === undefined) throw new Error("no end-of-stream frame in the answer");
  const parsed = JSON.parse(end.data.toString()) as {
    error?: { code?: string };
    metadata?: Record<string, string[]>;
  };
  return {
    code: parsed.error?.code ?? "ok",
    ferryCode: parsed.metadata?.["ferry-error-code"]?.[0],
  };
}

/** gRPC-Web: the status is in the trailers frame (flags 0x80), or in headers when it is all. */
export function grpcWebOutcome(answer: RawAnswer): Outcome {
  const fields: Record<string, string> = { ...answer.headers };
  const trailer = frames(answer.body).find((f) => (f.flags & 0x80) !== 0);
  for (const line of trailer?.data.toString().split("\r\n") ?? []) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return grpcFields(fields, answer.status);
}

/** gRPC: the status is in the HTTP/2 trailers, or in headers (a trailers-only answer). */
export function grpcOutcome(answer: RawAnswer): Outcome {
  return grpcFields({ ...answer.headers, ...answer.trailers }, answer.status);
}

function grpcFields(fields: Record<string, string>, status: number): Outcome {
  const grpcStatus = fields["grpc-status"];
  if (grpcStatus === undefined) return { code: `http ${status}`, ferryCode: fields["ferry-error-code"] };
  return { code: GRPC_CODES[Number(grpcStatus)] ?? grpcStatus, ferryCode: fields["ferry-error-code"] };
}
