/**
 * The CLI's exit codes for what the remote client throws (SPEC: 1 job failed or anything else,
 * 2 usage, 3 not found or denied, 4 unreachable), and the one line it prints for each, without a
 * daemon: FerryErrors as the client throws them, and the raw RPC errors of the admin commands.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { explainFailure } from "../../src/cli/remote.js";
import { toFerryError } from "../../src/client/errors.js";
import { ErrorCode, FerryError } from "../../src/core/errors.js";

const SERVER = "http://127.0.0.1:50051";
const explain = (error: unknown) => explainFailure(error, () => SERVER);

describe("the CLI's answer to a failed call", () => {
  it("maps the library's codes to the SPEC's exit codes", () => {
    const exitOf = (code: ErrorCode) => explain(new FerryError(code, "why")).exitCode;
    expect(Object.fromEntries(Object.values(ErrorCode).map((code) => [code, exitOf(code)] as const))).toEqual(
      {
        FERRY_INVALID_ARGUMENT: 2,
        FERRY_PAYLOAD_TOO_LARGE: 2,
        FERRY_UNKNOWN_HANDLER: 2,
        FERRY_SERIALIZATION: 2,
        FERRY_NOT_FOUND: 3,
        FERRY_UNAUTHENTICATED: 3,
        FERRY_PERMISSION_DENIED: 3,
        // A refusal like a denied role: decided so, and said in docs/cli.md.
        FERRY_QUOTA_EXCEEDED: 3,
        FERRY_TIMEOUT: 1,
        FERRY_CANCELLED: 1,
        // Answered by a daemon whose store failed: it was reached, so not 4.
        FERRY_STORE_UNAVAILABLE: 1,
        FERRY_NOT_FINISHED: 1,
        FERRY_HANDLER_CRASHED: 1,
      },
    );
  });

  it("prints CODE: message, with the FERRY_TOKEN hint for a bad token", () => {
    expect(explain(new FerryError(ErrorCode.NotFound, "no such job"))).toEqual({
      message: "FERRY_NOT_FOUND: no such job",
      exitCode: 3,
    });
    expect(explain(new FerryError(ErrorCode.Unauthenticated, "bad token")).message).toBe(
      "FERRY_UNAUTHENTICATED: bad token (FERRY_TOKEN holds the token)",
    );
  });

  it("says a daemon that cannot be reached is not running, and where it was looked for (exit 4)", () => {
    const refused = new ConnectError("connect ECONNREFUSED 127.0.0.1:50051", Code.Unavailable);
    const expected = {
      message: `cannot reach the daemon at ${SERVER} (connect ECONNREFUSED 127.0.0.1:50051): is it running? FERRY_SERVER names it`,
      exitCode: 4,
    };
    // As the client throws it, and as a raw admin call does.
    expect(explain(toFerryError(refused))).toEqual(expected);
    expect(explain(refused)).toEqual(expected);
  });

  it("reads a raw call's Ferry code as the client does", () => {
    const denied = new ConnectError("your role may not list plugins", Code.PermissionDenied, {
      "ferry-error-code": "FERRY_PERMISSION_DENIED",
    });
    expect(explain(denied)).toEqual({
      message: "FERRY_PERMISSION_DENIED: your role may not list plugins",
      exitCode: 3,
    });
  });

  it("answers anything else with exit 1", () => {
    expect(explain(new Error("boom"))).toEqual({ message: "Error: boom", exitCode: 1 });
  });
});
