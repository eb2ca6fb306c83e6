import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, printConfig, redactUrl } from "../../src/daemon/config.js";
import { tempDir } from "../helpers/temp.js";

const dir = tempDir();
afterAll(() => dir.remove());
let files = 0;

function configFile(text: string): string {
  const path = join(dir.path, `ferry-${++files}.toml`);
  writeFileSync(path, text);
  return path;
}

/** The FerryError a load throws: its code, message and details. */
function refusal(load: () => unknown) {
  try {
    load();
  } catch (error) {
    const { code, message, details } = error as { code: string; message: string; details?: unknown };
    return { code, message, details };
  }
  throw new Error("the config loaded");
}

describe("daemon config", () => {
  it("has a default for every key: safe ones (loopback, auth on, no origins, process isolation)", () => {
    const config = loadConfig();
    expect(config.server).toEqual({
      bind_address: "127.0.0.1",
      port: 50051,
      auth_enabled: true,
      allowed_origins: [],
      allowed_hosts: [],
      metrics_public: false,
      tls_cert: "",
      tls_key: "",
      admin_token_file: "./ferry-admin.token",
      restricted_handlers: ["sql.exec"],
      max_streams_per_connection: 100,
      max_header_bytes: 16_384,
      max_connections_per_address: 256,
    });
    expect(config.store.url).toBe("sqlite:./ferry.db");
    expect(config.workers).toEqual({
      queues: ["default"],
      concurrency: 8,
      max_running: 32,
      default_timeout: "5m",
    });
    expect(config.limits.cancel_grace_max).toBe("1h");
    expect(config.limits).toMatchObject({
      max_body_bytes_per_connection: 16 * 1024 * 1024,
      max_body_bytes_in_flight: 64 * 1024 * 1024,
      max_body_bytes_per_user: 16 * 1024 * 1024,
      body_stall_timeout: "10s",
      answer_stall_timeout: "30s",
      max_calls_in_flight_per_user: 64,
      max_watches_per_user: 100,
    });
    expect(config.plugins).toEqual({
      enabled: true,
      dirs: ["./plugins"],
      isolation: "process",
      user: "",
      writable_dirs: [],
    });
  });

  it("layers the file, then FERRY_SECTION__KEY variables (typed), then flags", () => {
    const file = configFile(
      '[server]\nport = 6000\nallowed_origins = ["https://app.example.com"]\n[workers]\nconcurrency = 4\n',
    );
    const config = loadConfig({
      file,
      env: {
        FERRY_SERVER__PORT: "7000",
        FERRY_SERVER__AUTH_ENABLED: "false",
        FERRY_STORE__URL: "sqlite:./x.db",
        HOME: "/x",
      },
      overrides: { workers: { concurrency: 2 } },
    });
    expect(config.server.port).toBe(7000);
    expect(config.server.auth_enabled).toBe(false);
    expect(config.server.allowed_origins).toEqual(["https://app.example.com"]);
    expect(config.store.url).toBe("sqlite:./x.db");
    expect(config.workers.concurrency).toBe(2);
  });

  it("takes the library's FERRY_STORE as the store, under FERRY_STORE__URL and flags", () => {
    const file = configFile('[store]\nurl = "sqlite:./file.db"\n');
    expect(loadConfig({ file, env: { FERRY_STORE: "sqlite:./lib.db" } }).store.url).toBe("sqlite:./lib.db");
    const both = { FERRY_STORE: "sqlite:./lib.db", FERRY_STORE__URL: "sqlite:./var.db" };
    expect(loadConfig({ file, env: both }).store.url).toBe("sqlite:./var.db");
    const flagged = loadConfig({ file, env: both, overrides: { store: { url: "sqlite:./flag.db" } } });
    expect(flagged.store.url).toBe("sqlite:./flag.db");
    expect(loadConfig({ file, env: {} }).store.url).toBe("sqlite:./file.db");
  });

  it("refuses an unknown key, naming it and its line", () => {
    const file = configFile(
      '[store]\nurl = "sqlite:./a.db"\n\n[server]\nport = 50051\nbind_adress = "0.0.0.0"\n',
    );
    const { code, message, details } = refusal(() => loadConfig({ file }));
    expect(code).toBe("FERRY_INVALID_ARGUMENT");
    expect(message).toBe(`${file}:6: server.bind_adress: unknown key`);
    expect(details).toEqual({ key: "server.bind_adress", line: 6 });
    expect(refusal(() => loadConfig({ file: configFile("[dashboard]\nx = 1\n") })).message).toMatch(
      /:1: dashboard: unknown key$/,
    );
  });

  it("refuses a bad value with its key and line, and a bad variable by its name", () => {
    const file = configFile('[limits]\ncancel_grace_max = "2h"\n');
    expect(refusal(() => loadConfig({ file })).message).toBe(
      `${file}:2: limits.cancel_grace_max: at most 3600 s`,
    );
    const port = refusal(() => loadConfig({ file: configFile("[server]\nport = 70000\n") }));
    expect(port.details).toMatchObject({ key: "server.port", line: 2 });
    const env = refusal(() => loadConfig({ env: { FERRY_WORKERS__CONCURRENCY: "many" } }));
    expect(env.message).toMatch(/^FERRY_WORKERS__CONCURRENCY: workers\.concurrency: /);
    expect(refusal(() => loadConfig({ env: { FERRY_SERVER__COLOUR: "1" } })).message).toBe(
      "FERRY_SERVER__COLOUR: server.colour: unknown key",
    );
  });

  it("refuses broken TOML with the line the parser stopped at", () => {
    const file = configFile("[server]\nport = 1\nport = 2\n");
    const { code, details } = refusal(() => loadConfig({ file }));
    expect(code).toBe("FERRY_INVALID_ARGUMENT");
    expect(details).toMatchObject({ line: 3 });
    expect(refusal(() => loadConfig({ file: "/nonexistent/ferry.toml" })).message).toMatch(/ENOENT/);
  });

  it("prints the effective config as TOML that loads back, with secrets hidden", () => {
    const config = loadConfig({
      env: {
        FERRY_STORE__URL: "postgres://ferry:s3cret@db:5432/jobs?password=also-secret",
        FERRY_SQL__URL: "postgres://reader:hunter2@db/app",
      },
    });
    const text = printConfig(config);
    expect(text).not.toMatch(/s3cret|also-secret|hunter2/);
    expect(text).toContain("postgres://ferry:***@db:5432/jobs?password=***");
    const back = parse(text) as { server: { port: number }; workers: { queues: string[] } };
    expect(back.server.port).toBe(50051);
    expect(back.workers.queues).toEqual(["default"]);
    expect(redactUrl("nats://tok3n@127.0.0.1:4222")).toBe("nats://***@127.0.0.1:4222");
    expect(redactUrl("sqlite:./ferry.db")).toBe("sqlite:./ferry.db");
  });
});
