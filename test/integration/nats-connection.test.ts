/**
 * The NATS store's connection layer against real servers: the machine's nats-server
 * (127.0.0.1:4222, FERRY_TEST_NATS_URL overrides) and throw-away servers started here with
 * user/password, token, nkey, TLS, client-certificate TLS, and without JetStream. An unreachable
 * server fails these tests: they never skip.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { nanos, nkeys } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, FerryError } from "../../src/core/errors.js";
import {
  type ConnectNatsOptions,
  connectNats,
  featuresOf,
  type NatsHandles,
  reconnectDelay,
} from "../../src/store/nats/connection.js";
import { ensureKv, ensureStream, type StreamSettings } from "../../src/store/nats/provision.js";
import { parseNatsStoreUrl } from "../../src/store/nats/store-url.js";
import {
  freePort,
  type NatsServerProcess,
  type StartNatsServerOptions,
  startNatsServer,
} from "../helpers/nats-server.js";
import { eventually, tempDir } from "../helpers/temp.js";

const LOCAL_NATS = process.env.FERRY_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

/** Every connection a test opens, closed after it. */
const opened: NatsHandles[] = [];
afterEach(async () => {
  for (const handles of opened.splice(0)) await handles.nc.close().catch(() => {});
});

async function open(url: string, options: ConnectNatsOptions = {}): Promise<NatsHandles> {
  const handles = await connectNats(parseNatsStoreUrl(url), options);
  opened.push(handles);
  return handles;
}

/** The FerryError `open(url)` fails with (the test fails if it connects). */
async function refusal(url: string, options: ConnectNatsOptions = {}): Promise<FerryError> {
  try {
    await open(url, options);
  } catch (error) {
    if (error instanceof FerryError) return error;
    throw new Error(`expected a FerryError, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected ${url} to be refused, but it connected`);
}

/** Servers a describe block started, stopped (and their folders removed) after it. */
function serversOf() {
  const servers: NatsServerProcess[] = [];
  return {
    start: async (args: string[], options: StartNatsServerOptions = {}) => {
      const server = await startNatsServer(args, options);
      servers.push(server);
      return server;
    },
    stopAll: async () => {
      // Newest first: a restarted server shares its predecessor's folder, which the older one removes.
      for (const server of servers.splice(0).reverse()) await server.stop();
    },
  };
}

describe("pure helpers", () => {
  it("features follow the server version", () => {
    const none = { multiFilter: false, messageTtl: false, atomicBatch: false };
    expect(featuresOf("2.9.10")).toEqual(none);
    expect(featuresOf("2.10.0")).toEqual({ ...none, multiFilter: true });
    expect(featuresOf("2.10.22-RC.1")).toEqual({ ...none, multiFilter: true });
    expect(featuresOf("2.11.4")).toEqual({ multiFilter: true, messageTtl: true, atomicBatch: false });
    expect(featuresOf("2.12.0")).toEqual({ multiFilter: true, messageTtl: true, atomicBatch: true });
    expect(featuresOf("v3.0.1")).toEqual({ multiFilter: true, messageTtl: true, atomicBatch: true });
    expect(featuresOf("garbage")).toEqual(none);
  });

  it("the reconnect delay starts at 250 ms, grows with the outage, stays under the cap, starts over", () => {
    let clock = 1_000_000;
    const delay = reconnectDelay({ now: () => clock, random: () => 0, quietMs: 5_000 });
    expect(delay()).toBe(250);
    clock += 250;
    expect(delay()).toBe(250);
    clock += 1_750; // 2 s into the outage
    expect(delay()).toBe(1_000);
    clock += 2_000;
    expect(delay()).toBe(2_000);
    clock += 60_000; // connected for a while, then a new outage
    expect(delay()).toBe(250);
    const jittered = reconnectDelay({ now: () => clock, random: () => 0.999 });
    expect(jittered()).toBeGreaterThan(300);
    expect(jittered()).toBeLessThanOrEqual(313);
  });
});

describe("the machine's nats-server", () => {
  const prefix = `ferry_it_${process.pid}_${Date.now().toString(36)}`;
  const created = new Set<string>();
  let admin: NatsHandles;

  const workStream = (overrides: Partial<StreamSettings> = {}): StreamSettings => ({
    name: `${prefix}_WORK`,
    subjects: [`${prefix}.work.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: 1,
    duplicate_window: nanos(120_000),
    ...overrides,
  });

  let unreachable: Error | undefined;

  beforeAll(async () => {
    try {
      admin = await connectNats(parseNatsStoreUrl(`${LOCAL_NATS}?prefix=${prefix}`), { timeoutMs: 3_000 });
    } catch (error) {
      unreachable = new Error(`the NATS server at ${LOCAL_NATS} is unusable: ${String(error)}`, {
        cause: error,
      });
    }
  });

  // Every test fails, none is skipped, when the server is not there.
  beforeEach(() => {
    if (unreachable !== undefined) throw unreachable;
  });

  afterAll(async () => {
    if (unreachable !== undefined) return;
    for (const name of created) await admin.jsm.streams.delete(name).catch(() => {});
    await admin.nc.close();
  });

  it("connects and reports the version and what it can do", async () => {
    const handles = await open(`${LOCAL_NATS}?prefix=${prefix}&name=ferry-test`);
    expect(handles.serverVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(handles.features).toEqual(featuresOf(handles.serverVersion));
    if (handles.serverVersion.startsWith("2.9.")) {
      expect(handles.features).toEqual({ multiFilter: false, messageTtl: false, atomicBatch: false });
    }
    expect(handles.nc.info?.jetstream).toBe(true);
    expect((await handles.jsm.getAccountInfo()).limits).toBeDefined();
  });

  it("ensureStream creates once; again, and from two connections at once, gives the same stream", async () => {
    created.add(`${prefix}_WORK`);
    const first = await ensureStream(admin.jsm, workStream());
    expect(first.config.retention).toBe(RetentionPolicy.Workqueue);
    const again = await ensureStream(admin.jsm, workStream());
    expect(again.created).toBe(first.created);

    const [a, b] = await Promise.all([open(LOCAL_NATS), open(LOCAL_NATS)]);
    created.add(`${prefix}_RACE`);
    const race = workStream({ name: `${prefix}_RACE`, subjects: [`${prefix}.race.>`] });
    const [fromA, fromB] = await Promise.all([ensureStream(a.jsm, race), ensureStream(b.jsm, race)]);
    expect(fromA.created).toBe(fromB.created);
    expect(fromA.config).toEqual(fromB.config);
  });

  it("ensureStream refuses a stream that exists with other settings, retention first", async () => {
    created.add(`${prefix}_WORK`);
    await ensureStream(admin.jsm, workStream());
    const error = await ensureStream(
      admin.jsm,
      workStream({ retention: RetentionPolicy.Limits, duplicate_window: nanos(60_000) }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe(ErrorCode.StoreUnavailable);
    expect((error as FerryError).message).toMatch(
      /stream ferry_it_\w+_WORK does not have the settings Ferry needs: retention is "workqueue", not "limits"; duplicate_window is 120000000000, not 60000000000/,
    );
  });

  it("ensureStream refuses a setting the server silently drops", async () => {
    created.add(`${prefix}_TTL`);
    const asked = workStream({ name: `${prefix}_TTL`, subjects: [`${prefix}.ttl.>`], allow_msg_ttl: true });
    const outcome = await ensureStream(admin.jsm, asked).catch((e: unknown) => e);
    if (featuresOf(admin.serverVersion).messageTtl) {
      expect((outcome as { config: { allow_msg_ttl: boolean } }).config.allow_msg_ttl).toBe(true);
    } else {
      expect((outcome as FerryError).code).toBe(ErrorCode.StoreUnavailable);
      expect((outcome as FerryError).message).toMatch(
        /this server does not keep allow_msg_ttl \(a newer nats-server is needed\)/,
      );
    }
  });

  it("ensureStream turns the server's refusal into FERRY_STORE_UNAVAILABLE", async () => {
    // Three replicas on a single server: the server cannot place them.
    const error = await ensureStream(
      admin.jsm,
      workStream({ name: `${prefix}_R3`, subjects: [`${prefix}.r3.>`], num_replicas: 3 }),
    ).catch((e: unknown) => e);
    created.add(`${prefix}_R3`);
    expect((error as FerryError).code).toBe(ErrorCode.StoreUnavailable);
    expect((error as FerryError).message).toMatch(/cannot create the NATS stream ferry_it_\w+_R3: /);
  });

  it("ensureKv creates once; again, and from two connections at once, gives the same bucket", async () => {
    const bucket = `${prefix}_jobs`;
    created.add(`KV_${bucket}`);
    const kv = await ensureKv(admin.kvm, bucket, { history: 5, replicas: 1, storage: StorageType.File });
    await kv.put("j1", "queued");
    const again = await ensureKv(admin.kvm, bucket, { history: 5, replicas: 1, storage: StorageType.File });
    expect((await again.get("j1"))?.string()).toBe("queued");

    const [a, b] = await Promise.all([open(LOCAL_NATS), open(LOCAL_NATS)]);
    const race = `${prefix}_race`;
    created.add(`KV_${race}`);
    const settings = { history: 2, replicas: 1, storage: StorageType.File, ttl: 3_600_000 };
    const [fromA, fromB] = await Promise.all([
      ensureKv(a.kvm, race, settings),
      ensureKv(b.kvm, race, settings),
    ]);
    const [statusA, statusB] = await Promise.all([fromA.status(), fromB.status()]);
    expect(statusA.streamInfo.created).toBe(statusB.streamInfo.created);
    expect(statusA.history).toBe(2);
    expect(statusA.ttl).toBe(3_600_000);
    await fromA.put("k", "from a");
    expect((await fromB.get("k"))?.string()).toBe("from a");
  });

  it("ensureKv refuses a bucket that exists with other settings (the client would open it silently)", async () => {
    const bucket = `${prefix}_meta`;
    created.add(`KV_${bucket}`);
    await ensureKv(admin.kvm, bucket, { history: 5, replicas: 1 });
    const error = await ensureKv(admin.kvm, bucket, {
      history: 2,
      replicas: 1,
      storage: StorageType.Memory,
    }).catch((e: unknown) => e);
    expect((error as FerryError).code).toBe(ErrorCode.StoreUnavailable);
    expect((error as FerryError).message).toMatch(
      /KV bucket ferry_it_\w+_meta does not have the settings Ferry needs: storage is "file", not "memory"; max_msgs_per_subject is 5, not 2/,
    );
  });

  it("a port nobody listens on is FERRY_STORE_UNAVAILABLE, at once", async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await refusal(`nats://127.0.0.1:${port}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toBe(`NATS at 127.0.0.1:${port} is unreachable: connection refused`);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("with two servers listed, a dead first one does not stop the connection", async () => {
    const dead = await freePort();
    const local = LOCAL_NATS.replace(/^nats:\/\//, "");
    const handles = await open(`nats://127.0.0.1:${dead},${local}`);
    expect(handles.nc.getServer()).toBe(local);
  });
});

describe("a server with a user and password", () => {
  const servers = serversOf();
  let server: NatsServerProcess;
  beforeAll(async () => {
    server = await servers.start(["-js", "--user", "ferry", "--pass", "s3cret"]);
  });
  afterAll(() => servers.stopAll());

  it("connects with the right password", async () => {
    const handles = await open(`nats://ferry:s3cret@127.0.0.1:${server.port}`);
    expect(handles.nc.info?.jetstream).toBe(true);
  });

  it("refuses a wrong password with FERRY_STORE_UNAVAILABLE, never showing it", async () => {
    const error = await refusal(`nats://ferry:wr0ngPW@127.0.0.1:${server.port}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toBe(
      `NATS at 127.0.0.1:${server.port} refused the user "ferry" with the password in the store URL: Authorization Violation`,
    );
    expect(`${error.message}${error.stack}${JSON.stringify(error.details ?? {})}`).not.toMatch(
      /wr0ngPW|s3cret/,
    );
  });

  it("refuses a connection without credentials, saying how to give them", async () => {
    const error = await refusal(`nats://127.0.0.1:${server.port}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(/refused a connection without credentials \(give user:pass@, token@/);
  });

  it("reconnects by itself when the server comes back on the same port and data", async () => {
    const handles = await open(`nats://ferry:s3cret@127.0.0.1:${server.port}`);
    const statuses: string[] = [];
    void (async () => {
      for await (const status of handles.nc.status()) statuses.push(status.type);
    })();
    await server.stop({ keepDir: true });
    await eventually(() => statuses.includes("disconnect"), "the client to notice the server left");
    server = await servers.start(["-js", "--user", "ferry", "--pass", "s3cret"], {
      port: server.port,
      dir: server.dir,
    });
    await eventually(() => statuses.includes("reconnect"), "the client to reconnect", 10_000);
    expect(handles.nc.isClosed()).toBe(false);
    await handles.jsm.getAccountInfo();
  });
});

describe("a server with a token", () => {
  const servers = serversOf();
  let server: NatsServerProcess;
  // Characters that must be percent-encoded in the URL, decoded before they reach the server.
  const token = "tok/en+1@x";
  beforeAll(async () => {
    server = await servers.start(["-js", "--auth", token]);
  });
  afterAll(() => servers.stopAll());

  it("connects with the percent-encoded token", async () => {
    const handles = await open(`nats://${encodeURIComponent(token)}@127.0.0.1:${server.port}`);
    expect(handles.nc.info?.jetstream).toBe(true);
  });

  it("refuses a wrong token without showing it", async () => {
    const error = await refusal(`nats://n0tTheT0ken@127.0.0.1:${server.port}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(/refused the token in the store URL: Authorization Violation/);
    expect(error.message).not.toMatch(/n0tTheT0ken|tok\/en/);
  });
});

describe("a server with nkey users", () => {
  const servers = serversOf();
  const user = nkeys.createUser();
  // Made in beforeAll, not here: a run filtered to other tests would leave the folder behind.
  let dir: ReturnType<typeof tempDir>;
  let seedFile: string;
  let server: NatsServerProcess;
  beforeAll(async () => {
    dir = tempDir("ferry-nkey-");
    seedFile = join(dir.path, "user.nk");
    const config = join(dir.path, "server.conf");
    writeFileSync(config, `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
    writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`);
    server = await servers.start(["-js", "-c", config]);
  });
  afterAll(async () => {
    await servers.stopAll();
    dir?.remove();
  });

  it("connects with ?nkey= naming the seed file", async () => {
    const handles = await open(`nats://127.0.0.1:${server.port}?nkey=${seedFile}`);
    expect(handles.nc.info?.jetstream).toBe(true);
  });

  it("refuses another user's seed, without showing it", async () => {
    const other = join(dir.path, "other.nk");
    const otherSeed = new TextDecoder().decode(nkeys.createUser().getSeed());
    writeFileSync(other, otherSeed);
    const error = await refusal(`nats://127.0.0.1:${server.port}?nkey=${other}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(/refused the nkey seed in .*other\.nk: Authorization Violation/);
    expect(error.message).not.toContain(otherSeed);
  });

  it("refuses a missing, an empty and a corrupt seed file before connecting", async () => {
    const missing = await refusal(`nats://127.0.0.1:${server.port}?nkey=${join(dir.path, "nope.nk")}`);
    expect(missing.message).toMatch(/cannot read the NATS nkey seed file \(\?nkey=\) .*nope\.nk \(ENOENT\)/);
    const empty = join(dir.path, "empty.nk");
    writeFileSync(empty, "\n");
    expect((await refusal(`nats://127.0.0.1:${server.port}?nkey=${empty}`)).message).toMatch(
      /holds no nkey seed/,
    );
    const corrupt = join(dir.path, "corrupt.nk");
    const seed = new TextDecoder().decode(user.getSeed());
    const broken = `${seed.slice(0, 10)}${seed[10] === "A" ? "B" : "A"}${seed.slice(11)}`;
    writeFileSync(corrupt, broken);
    const error = await refusal(`nats://127.0.0.1:${server.port}?nkey=${corrupt}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(/is not a valid nkey seed/);
    expect(error.message).not.toContain(broken);
  });

  it("refuses a file that is not a creds file", async () => {
    const creds = join(dir.path, "user.creds");
    writeFileSync(creds, "not a creds file\n");
    const error = await refusal(`nats://127.0.0.1:${server.port}?creds=${creds}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(/user\.creds is not a NATS creds file/);
  });
});

/** A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, made with openssl. */
function makeCertificates(dir: string) {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Ferry test CA",
  );
  const issue = (name: string, subject: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl("req", ...ecKey, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  };
  issue(
    "server",
    "/CN=127.0.0.1",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  issue("client", "/CN=ferry-test-client", "extendedKeyUsage=clientAuth\n");
  return {
    ca: file("ca.pem"),
    serverCert: file("server.pem"),
    serverKey: file("server.key"),
    clientCert: file("client.pem"),
    clientKey: file("client.key"),
  };
}

describe("TLS", () => {
  const servers = serversOf();
  let dir: ReturnType<typeof tempDir>;
  let certs: ReturnType<typeof makeCertificates>;
  let tls: NatsServerProcess;
  let mutual: NatsServerProcess;
  let plain: NatsServerProcess;
  beforeAll(async () => {
    dir = tempDir("ferry-tls-");
    certs = makeCertificates(dir.path);
    const serverTls = ["--tlscert", certs.serverCert, "--tlskey", certs.serverKey];
    [tls, mutual, plain] = await Promise.all([
      servers.start(["-js", "--tls", ...serverTls]),
      servers.start(["-js", "--tlsverify", "--tlscacert", certs.ca, ...serverTls]),
      servers.start(["-js"]),
    ]);
  });
  afterAll(async () => {
    await servers.stopAll();
    dir?.remove();
  });

  it("connects with ?ca= naming the CA, by IP and by name", async () => {
    const byIp = await open(`tls://127.0.0.1:${tls.port}?ca=${certs.ca}`);
    expect(byIp.nc.info?.tls_required).toBe(true);
    await open(`nats://localhost:${tls.port}?ca=${certs.ca}`);
  });

  it("fails without the CA: the system trust does not know a self-signed one", async () => {
    for (const url of [`tls://127.0.0.1:${tls.port}`, `nats://127.0.0.1:${tls.port}`]) {
      const error = await refusal(url);
      expect(error.code).toBe(ErrorCode.StoreUnavailable);
      expect(error.message).toMatch(
        new RegExp(
          `^TLS with NATS at 127\\.0\\.0\\.1:${tls.port} failed: .*certificate.*\\(\\?ca= names the CA file`,
        ),
      );
    }
  });

  it("a missing CA file is FERRY_STORE_UNAVAILABLE naming the file", async () => {
    const error = await refusal(`tls://127.0.0.1:${tls.port}?ca=${join(dir.path, "nope.pem")}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(
      /^cannot use the TLS files for NATS at 127\.0\.0\.1:\d+: .*nope\.pem doesn't exist$/,
    );
  });

  it("asking for TLS from a server without it fails", async () => {
    const error = await refusal(`tls://127.0.0.1:${plain.port}?ca=${certs.ca}`);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toBe(
      `NATS at 127.0.0.1:${plain.port} does not offer TLS, but the store URL asks for it`,
    );
  });

  it("a server that verifies clients takes ?cert= and ?key=, and refuses a client without them", async () => {
    await open(
      `tls://127.0.0.1:${mutual.port}?ca=${certs.ca}&cert=${certs.clientCert}&key=${certs.clientKey}`,
    );
    // The server drops the handshake; the client only sees its timeout run out.
    const error = await refusal(`tls://127.0.0.1:${mutual.port}?ca=${certs.ca}`, { timeoutMs: 1_000 });
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toMatch(
      /did not answer within 1000 ms \(a server that requires a client certificate/,
    );
  });
});

describe("a server without JetStream", () => {
  const servers = serversOf();
  afterAll(() => servers.stopAll());

  it("is refused with FERRY_STORE_UNAVAILABLE naming JetStream", async () => {
    const server = await servers.start([]);
    const error = await refusal(server.url);
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toBe(
      `NATS at 127.0.0.1:${server.port} runs without JetStream (start nats-server with -js): the store needs it`,
    );
  });
});
