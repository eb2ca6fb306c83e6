/**
 * The daemon through the reference gRPC client for Node (@grpc/grpc-js, with the .proto files
 * loaded at run time by @grpc/proto-loader): nothing of Connect on the client side. Covers a
 * unary round trip with a token in metadata, a server stream, an error's Ferry code in the
 * trailers, and the standard health service without a token.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterEach, describe, expect, it } from "vitest";
import { startTestDaemon } from "../helpers/daemon-process.js";

const PROTO_DIR = new URL("../../proto", import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: grpc-js clients are built at run time from the .proto.
type DynamicClient = any;

function loadClients(address: string) {
  const definition = protoLoader.loadSync(
    ["ferry/v1/jobs.proto", "ferry/v1/admin.proto", "grpc/health/v1/health.proto"],
    { includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true },
  );
  const loaded = grpc.loadPackageDefinition(definition) as DynamicClient;
  const credentials = grpc.credentials.createInsecure();
  return {
    jobs: new loaded.ferry.v1.JobService(address, credentials),
    health: new loaded.grpc.health.v1.Health(address, credentials),
  };
}

/** A unary call as a promise: its answer, or its error with status and trailers. */
function call<T>(client: DynamicClient, method: string, request: unknown, metadata = new grpc.Metadata()) {
  return new Promise<T>((resolve, reject) => {
    client[method](request, metadata, (error: grpc.ServiceError | null, answer: T) =>
      error === null ? resolve(answer) : reject(error),
    );
  });
}

describe("the daemon through @grpc/grpc-js", () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  it("launches, streams, fails with Ferry's code in the trailers, and answers health checks", async () => {
    const daemon = await startTestDaemon();
    stops.push(daemon.stop);
    const { url } = daemon;
    const token = daemon.adminToken();
    const { jobs, health } = loadClients(new URL(url).host);
    stops.push(() => {
      jobs.close();
      health.close();
    });
    const auth = new grpc.Metadata();
    auth.set("authorization", `Bearer ${token}`);

    // Health needs no token.
    expect(await call(health, "check", { service: "" })).toEqual({ status: "SERVING" });
    expect(await call(health, "check", { service: "ferry.v1.JobService" })).toEqual({ status: "SERVING" });
    const unknown = await call(health, "check", { service: "nope.Service" }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((unknown as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);

    // No token: UNAUTHENTICATED, with Ferry's code in the trailers.
    const anonymous = (await call(jobs, "list", {}).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    expect(anonymous.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(anonymous.metadata.get("ferry-error-code")).toEqual(["FERRY_UNAUTHENTICATED"]);

    // A payload is a google.protobuf.Value, written out as proto-loader shapes it.
    const payload = {
      structValue: { fields: { to: { stringValue: "a@example.com" }, n: { numberValue: 2 } } },
    };
    const { handle } = await call<{ handle: { id: string; cookie: string } }>(
      jobs,
      "launch",
      { handler: "ferry.echo", payload },
      auth,
    );
    expect(handle.id).toMatch(/^[0-9a-f-]{36}$/);

    // Watch is a server stream: statuses until the job is finished.
    const states = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const stream = jobs.watch({ handle }, auth);
      stream.on("data", (status: { state: string }) => seen.push(status.state));
      stream.on("end", () => resolve(seen));
      stream.on("error", reject);
    });
    expect(states.at(-1)).toBe("completed");

    const result = await call<{ state: string; value: unknown }>(jobs, "result", { handle }, auth);
    expect(result.state).toBe("completed");
    expect(result.value).toMatchObject({ structValue: { fields: { to: { stringValue: "a@example.com" } } } });

    // A wrong cookie answers exactly like an unknown id.
    const forged = (await call(
      jobs,
      "status",
      { handle: { id: handle.id, cookie: "x".repeat(22) } },
      auth,
    ).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    expect(forged.code).toBe(grpc.status.NOT_FOUND);
    expect(forged.metadata.get("ferry-error-code")).toEqual(["FERRY_NOT_FOUND"]);
  }, 60_000);
});
