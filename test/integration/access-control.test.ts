/**
 * AccessControl on a real SQLite store: tokens authenticate, sessions end when their token is
 * revoked or its rights change (on this daemon at once, on another daemon sharing the database
 * within its refresh period), concurrent changes lose nothing, and the first admin is made once.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AccessData,
  createToken,
  decodeAccess,
  findUser,
  grant,
  revoke,
  revokeTokens,
} from "../../src/auth/access.js";
import { AccessControl, DEFAULT_REFRESH_MS } from "../../src/auth/access-control.js";
import { ensureFirstAdmin, FIRST_ADMIN } from "../../src/auth/first-admin.js";
import { mintToken, parseToken } from "../../src/auth/tokens.js";
import { ErrorCode, Ferry, FerryError } from "../../src/index.js";
import { sleep, tempDir } from "../helpers/temp.js";

let dir: ReturnType<typeof tempDir>;
let ferrys: Ferry[];
let controls: AccessControl[];

beforeEach(() => {
  dir = tempDir("ferry-access-");
  ferrys = [];
  controls = [];
});

afterEach(async () => {
  for (const access of controls) access.close();
  for (const ferry of ferrys) await ferry.close({ grace: 0 });
  dir.remove();
});

/** A Ferry on the test's database file (a second call: another daemon on the same database). */
async function openFerry(db = join(dir.path, "ferry.db")): Promise<Ferry> {
  const ferry = await Ferry.open({ store: `sqlite:${db}` });
  ferrys.push(ferry);
  return ferry;
}

async function openAccess(ferry: Ferry, options?: { refreshMs?: number }): Promise<AccessControl> {
  const access = await AccessControl.open(ferry.store, options);
  controls.push(access);
  return access;
}

/** Makes a token (and the user, when new) through `access`; answers the token. */
function makeToken(
  access: AccessControl,
  user: string,
  role?: "admin" | "submitter" | "viewer",
): Promise<string> {
  return access.change((data) => {
    const made = createToken(data, { user, role, now: Date.now() });
    return { data: made.data, answer: made.minted.token };
  });
}

function update(access: AccessControl, change: (data: AccessData) => AccessData): Promise<void> {
  return access.change((data) => ({ data: change(data), answer: undefined }));
}

/** What the store holds, read past every AccessControl. */
async function stored(ferry: Ferry): Promise<AccessData> {
  return decodeAccess((await ferry.store.readAccess())?.data);
}

/** Resolves with the abort's reason and how long it took, or rejects after `ms`. */
function abortedWithin(signal: AbortSignal, ms: number): Promise<{ reason: unknown; afterMs: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the session was not aborted within ${ms} ms`)), ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve({ reason: signal.reason, afterMs: performance.now() - started });
      },
      { once: true },
    );
  });
}

function expectUnauthenticated(signal: AbortSignal): void {
  expect(signal.aborted).toBe(true);
  expect(signal.reason).toBeInstanceOf(FerryError);
  expect((signal.reason as FerryError).code).toBe(ErrorCode.Unauthenticated);
}

describe("authentication", () => {
  it("starts empty on a fresh store", async () => {
    const access = await openAccess(await openFerry());
    expect(access.data).toEqual({ v: 1, users: [] });
    expect(access.authenticate(mintToken().token)).toBeUndefined();
  });

  it("answers the principal of a token it made", async () => {
    const ferry = await openFerry();
    const access = await openAccess(ferry);
    const token = await makeToken(access, "alice", "admin");
    const bobToken = await makeToken(access, "bob");
    const principal = access.authenticate(token);
    expect(principal).toEqual({
      user: "alice",
      role: "admin",
      grants: new Set(),
      tokenId: parseToken(token)!.id,
    });
    expect(access.authenticate(bobToken)).toMatchObject({
      user: "bob",
      role: "submitter",
      tokenId: parseToken(bobToken)!.id,
    });
    // The same object every time while nothing changes.
    expect(access.authenticate(token)).toBe(principal);
    // The store holds the user, not the token.
    const data = await stored(ferry);
    expect(findUser(data, "alice")?.tokens.map((t) => t.id)).toEqual([parseToken(token)!.id]);
    expect(JSON.stringify(data)).not.toContain(parseToken(token)!.secret);
  });

  it("answers undefined for a wrong, unknown or malformed token", async () => {
    const access = await openAccess(await openFerry());
    const token = await makeToken(access, "alice", "admin");
    const { id, secret } = parseToken(token)!;
    const otherSecret = parseToken(mintToken().token)!.secret;
    expect(access.authenticate(`ferry_${id}_${otherSecret}`)).toBeUndefined();
    const flipped = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    expect(access.authenticate(`ferry_${id}_${flipped}`)).toBeUndefined();
    expect(access.authenticate(mintToken().token)).toBeUndefined();
    for (const bad of [
      "",
      "ferry_",
      token.slice(0, -1),
      `${token}x`,
      `${token}\n`,
      ` ${token}`,
      `Bearer ${token}`,
      id,
      secret,
    ]) {
      expect(access.authenticate(bad), JSON.stringify(bad)).toBeUndefined();
    }
    expect(access.authenticate(token)?.user).toBe("alice");
  });

  it("knows tokens made by another AccessControl on the same database", async () => {
    const first = await openAccess(await openFerry());
    const token = await makeToken(first, "alice", "viewer");
    // A new one reads the document when it opens.
    const second = await openAccess(await openFerry());
    expect(second.authenticate(token)).toMatchObject({ user: "alice", role: "viewer" });
    // One open already picks up later changes on its own, within its refresh period.
    const later = await makeToken(second, "bob");
    expect(first.authenticate(later)).toBeUndefined();
    await sleep(3 * DEFAULT_REFRESH_MS);
    expect(first.authenticate(later)).toMatchObject({ user: "bob", role: "submitter" });
  });
});

describe("sessions", () => {
  it("end when the token is revoked through this AccessControl", async () => {
    const access = await openAccess(await openFerry());
    await makeToken(access, "root", "admin");
    const token = await makeToken(access, "bob");
    const session = access.hold(access.authenticate(token)!);
    expect(session.signal.aborted).toBe(false);
    await update(access, (data) => revokeTokens(data, "bob").data);
    expectUnauthenticated(session.signal);
    expect(access.authenticate(token)).toBeUndefined();
  });

  it("end within a second when the token is revoked through another daemon", async () => {
    const first = await openAccess(await openFerry());
    const token = await makeToken(first, "bob");
    await makeToken(first, "root", "admin");
    const second = await openAccess(await openFerry());
    expect(second.authenticate(token)?.user).toBe("bob");

    const session = first.hold(first.authenticate(token)!);
    // A change elsewhere that does not touch bob leaves the session alone.
    await makeToken(second, "carol");
    await sleep(3 * DEFAULT_REFRESH_MS);
    expect(session.signal.aborted).toBe(false);

    const aborted = abortedWithin(session.signal, 1_000);
    await update(second, (data) => revokeTokens(data, "bob").data);
    const { reason } = await aborted;
    expect(reason).toBeInstanceOf(FerryError);
    expect((reason as FerryError).code).toBe(ErrorCode.Unauthenticated);
    expect(first.authenticate(token)).toBeUndefined();
    expect(second.authenticate(token)).toBeUndefined();
  });

  it("end when the user's role or grants change", async () => {
    const access = await openAccess(await openFerry());
    await makeToken(access, "root", "admin");
    const token = await makeToken(access, "bob");
    const asSubmitter = access.hold(access.authenticate(token)!);

    await update(access, (data) => grant(data, { by: "root", user: "bob", grant: "admin" }));
    expectUnauthenticated(asSubmitter.signal);
    const admin = access.authenticate(token)!;
    expect(admin).toMatchObject({ user: "bob", role: "admin" });

    // A handler grant is a change of rights too.
    const asAdmin = access.hold(admin);
    expect(asAdmin.signal.aborted).toBe(false);
    await update(access, (data) => grant(data, { by: "root", user: "bob", grant: "sql.exec" }));
    expectUnauthenticated(asAdmin.signal);
    const withGrant = access.authenticate(token)!;
    expect(withGrant.grants).toEqual(new Set(["sql.exec"]));

    // And so is losing the role: with no role left, the token signs nobody in.
    const withRole = access.hold(withGrant);
    await update(access, (data) =>
      revoke(revoke(data, { user: "bob", grant: "admin" }), { user: "bob", grant: "submitter" }),
    );
    expectUnauthenticated(withRole.signal);
    expect(access.authenticate(token)).toBeUndefined();
  });

  it("end within a second when the role changes through another daemon", async () => {
    const first = await openAccess(await openFerry());
    await makeToken(first, "root", "admin");
    const token = await makeToken(first, "bob", "viewer");
    const second = await openAccess(await openFerry());
    const session = first.hold(first.authenticate(token)!);
    const aborted = abortedWithin(session.signal, 1_000);
    await update(second, (data) => grant(data, { by: "root", user: "bob", grant: "submitter" }));
    expect((await aborted).reason).toMatchObject({ code: ErrorCode.Unauthenticated });
    expect(first.authenticate(token)).toMatchObject({ user: "bob", role: "submitter" });
  });

  it("of other users and other tokens go on", async () => {
    const access = await openAccess(await openFerry());
    const root = await makeToken(access, "root", "admin");
    const bob = await makeToken(access, "bob");
    const bobSecond = await makeToken(access, "bob");
    const carol = await makeToken(access, "carol");
    const rootSession = access.hold(access.authenticate(root)!);
    const bobSession = access.hold(access.authenticate(bob)!);
    const bobSecondSession = access.hold(access.authenticate(bobSecond)!);
    const carolSession = access.hold(access.authenticate(carol)!);

    // A role below the one she has leaves carol's rights as they were, and her session with them.
    await update(access, (data) => grant(data, { by: "root", user: "carol", grant: "viewer" }));
    expect(carolSession.signal.aborted).toBe(false);
    // A role above it ends her session and nobody else's.
    await update(access, (data) => grant(data, { by: "root", user: "carol", grant: "admin" }));
    expectUnauthenticated(carolSession.signal);
    for (const session of [rootSession, bobSession, bobSecondSession])
      expect(session.signal.aborted).toBe(false);

    // Bob's tokens go: both his sessions end, root's and carol's new one stay.
    const carolAgain = access.hold(access.authenticate(carol)!);
    await update(access, (data) => revokeTokens(data, "bob").data);
    expectUnauthenticated(bobSession.signal);
    expectUnauthenticated(bobSecondSession.signal);
    expect(rootSession.signal.aborted).toBe(false);
    expect(carolAgain.signal.aborted).toBe(false);
    await sleep(3 * DEFAULT_REFRESH_MS);
    expect(rootSession.signal.aborted).toBe(false);
    expect(carolAgain.signal.aborted).toBe(false);
  });

  it("held for a principal that is no longer valid end at once", async () => {
    const access = await openAccess(await openFerry());
    const token = await makeToken(access, "bob");
    const stale = access.authenticate(token)!;
    await update(access, (data) => revokeTokens(data, "bob").data);
    expectUnauthenticated(access.hold(stale).signal);
  });

  it("released are not aborted later, and close ends the rest", async () => {
    const access = await openAccess(await openFerry());
    const token = await makeToken(access, "bob");
    const other = await makeToken(access, "carol");
    const released = access.hold(access.authenticate(token)!);
    released.release();
    const open = access.hold(access.authenticate(other)!);
    await update(access, (data) => revokeTokens(data, "bob").data);
    expect(released.signal.aborted).toBe(false);
    expect(open.signal.aborted).toBe(false);
    access.close();
    expectUnauthenticated(open.signal);
  });
});

describe("concurrent changes", () => {
  /** Counts the compare-and-set writes a store refused (another writer came first). */
  function countConflicts(ferry: Ferry): { conflicts: number } {
    const counter = { conflicts: 0 };
    const store = ferry.store;
    const write = store.writeAccess.bind(store);
    store.writeAccess = async (data, expectedRevision) => {
      const revision = await write(data, expectedRevision);
      if (revision === null) counter.conflicts++;
      return revision;
    };
    return counter;
  }

  it("lose nothing across two daemons", async () => {
    // 15 each: more concurrent changes than one change's write attempts (20).
    const firstFerry = await openFerry();
    const secondFerry = await openFerry();
    const counters = [countConflicts(firstFerry), countConflicts(secondFerry)];
    const first = await openAccess(firstFerry);
    const second = await openAccess(secondFerry);
    const names = [
      ...Array.from({ length: 15 }, (_, i) => `first-${i}`),
      ...Array.from({ length: 15 }, (_, i) => `second-${i}`),
    ];
    const tokens = await Promise.all(names.map((name, i) => makeToken(i < 15 ? first : second, name)));
    // The two really raced: some writes lost and were made again on the newer document.
    expect(counters[0]!.conflicts + counters[1]!.conflicts).toBeGreaterThan(0);

    const data = await stored(firstFerry);
    expect(data.users.map((u) => u.name).sort()).toEqual([...names].sort());
    expect(data.users.every((u) => u.tokens.length === 1)).toBe(true);
    await first.refresh();
    await second.refresh();
    for (const [i, token] of tokens.entries()) {
      expect(first.authenticate(token)?.user).toBe(names[i]);
      expect(second.authenticate(token)?.user).toBe(names[i]);
    }
  });

  it("lose nothing on one daemon", async () => {
    const access = await openAccess(await openFerry());
    const names = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    const [bobs, users] = await Promise.all([
      // Twelve tokens for one user at once: the cap (10) holds, each change sees the ones before.
      Promise.allSettled(Array.from({ length: 12 }, () => makeToken(access, "bob"))),
      Promise.all(names.map((name) => makeToken(access, name))),
    ]);
    expect(users).toHaveLength(30);
    expect(access.data.users.map((u) => u.name).sort()).toEqual([...names, "bob"].sort());
    const made = bobs.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const refused = bobs.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(made).toHaveLength(10);
    expect(refused).toEqual([
      expect.objectContaining({ code: ErrorCode.QuotaExceeded }),
      expect.objectContaining({ code: ErrorCode.QuotaExceeded }),
    ]);
    expect(findUser(await stored(ferrys[0]!), "bob")!.tokens).toHaveLength(10);
    for (const token of made) expect(access.authenticate(token)?.user).toBe("bob");
  });

  it("keep the last admin even when two daemons revoke at once", async () => {
    const first = await openAccess(await openFerry());
    await makeToken(first, "root", "admin");
    await makeToken(first, "ops", "admin");
    const second = await openAccess(await openFerry());
    const results = await Promise.allSettled([
      update(first, (data) => revokeTokens(data, "root").data),
      update(second, (data) => revokeTokens(data, "ops").data),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const [refused] = results.filter((r) => r.status === "rejected");
    expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.PermissionDenied });
    const data = await stored(ferrys[0]!);
    const live = data.users.filter((u) => u.roles.includes("admin") && u.tokens.length > 0);
    expect(live).toHaveLength(1);
  });
});

describe("the first admin", () => {
  it("is made once, with its token in a file only its owner can read", async () => {
    const ferry = await openFerry();
    const access = await openAccess(ferry);
    const file = join(dir.path, "admin-token");
    expect(await ensureFirstAdmin(access, file, Date.now())).toBe(file);

    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/^ferry_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}\n$/);
    const token = text.trim();
    expect(access.authenticate(token)).toMatchObject({
      user: FIRST_ADMIN,
      role: "admin",
      tokenId: parseToken(token)!.id,
    });
    expect(FIRST_ADMIN).toBe("admin");
    // Another daemon reading the store agrees.
    const other = await openAccess(await openFerry());
    expect(other.authenticate(token)).toMatchObject({ user: "admin", role: "admin" });
    expect((await stored(ferry)).users.map((u) => u.name)).toEqual(["admin"]);

    // Again: nothing to do, and the file is left as it was.
    const before = statSync(file);
    expect(await ensureFirstAdmin(access, file, Date.now())).toBeUndefined();
    expect(await ensureFirstAdmin(other, join(dir.path, "other-file"), Date.now())).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe(text);
    expect(statSync(file).ino).toBe(before.ino);
    expect(statSync(file).mtimeMs).toBe(before.mtimeMs);
    expect(readdirSync(dir.path).filter((name) => !name.startsWith("ferry.db"))).toEqual(["admin-token"]);
    expect(findUser(await stored(ferry), "admin")!.tokens).toHaveLength(1);
  });

  it("is not made when users exist", async () => {
    const access = await openAccess(await openFerry());
    await makeToken(access, "someone", "admin");
    const file = join(dir.path, "admin-token");
    expect(await ensureFirstAdmin(access, file, Date.now())).toBeUndefined();
    expect(readdirSync(dir.path).filter((name) => !name.startsWith("ferry.db"))).toEqual([]);
  });

  it("is made by exactly one of two daemons starting together", async () => {
    for (let round = 0; round < 5; round++) {
      const roundDir = join(dir.path, `round-${round}`);
      mkdirSync(roundDir);
      const db = join(roundDir, "ferry.db");
      const first = await openAccess(await openFerry(db));
      const second = await openAccess(await openFerry(db));
      const files = [join(roundDir, "token-a"), join(roundDir, "token-b")];
      const answers = await Promise.all([
        ensureFirstAdmin(first, files[0]!, Date.now()),
        ensureFirstAdmin(second, files[1]!, Date.now()),
      ]);
      const made = answers.filter((answer) => answer !== undefined);
      expect(made, `round ${round}`).toHaveLength(1);
      const names = readdirSync(roundDir).filter((name) => !name.startsWith("ferry.db"));
      expect(names, `round ${round}`).toEqual([made[0]!.slice(roundDir.length + 1)]);
      expect(names.filter((name) => name.endsWith(".tmp"))).toEqual([]);
      expect(statSync(made[0]!).mode & 0o777).toBe(0o600);

      const token = readFileSync(made[0]!, "utf8").trim();
      await first.refresh();
      await second.refresh();
      expect(first.authenticate(token)).toMatchObject({ user: "admin", role: "admin" });
      expect(second.authenticate(token)).toMatchObject({ user: "admin", role: "admin" });
      const data = decodeAccess((await ferrys.at(-1)!.store.readAccess())?.data);
      expect(data.users.map((u) => u.name)).toEqual(["admin"]);
      expect(data.users[0]!.tokens).toHaveLength(1);
    }
  });
});
