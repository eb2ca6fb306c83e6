import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type AccessData,
  checkUserName,
  createToken,
  decodeAccess,
  EMPTY_ACCESS,
  encodeAccess,
  findUser,
  grant,
  parseGrant,
  revoke,
  revokeTokens,
  topRole,
} from "../../src/auth/access.js";
import { mintToken, parseToken, secretMatches } from "../../src/auth/tokens.js";
import { ErrorCode } from "../../src/core/errors.js";

const code = (c: string) => expect.objectContaining({ code: c });
const NOW = 1_700_000_000_000;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** A document built by the functions under test, one token per user. */
function withUsers(...users: [name: string, role: "admin" | "submitter" | "viewer"][]): AccessData {
  let data = EMPTY_ACCESS;
  for (const [user, role] of users) data = createToken(data, { user, role, now: NOW }).data;
  return data;
}

describe("tokens", () => {
  it("mints ferry_<12>_<43> tokens whose secret hashes to the stored hash", () => {
    const minted = mintToken();
    expect(minted.token).toMatch(/^ferry_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}$/);
    expect(minted.token).toHaveLength("ferry_".length + 12 + 1 + 43);
    expect(minted.id).toHaveLength(12);
    expect(minted.id).toMatch(B64URL);
    expect(minted.token.startsWith(`ferry_${minted.id}_`)).toBe(true);
    const secret = minted.token.slice(`ferry_${minted.id}_`.length);
    expect(minted.hash).toBe(createHash("sha256").update(secret).digest("base64url"));
    expect(minted.hash).toHaveLength(43);
    // The hash is not the secret, and the secret is in no other field.
    expect(minted.hash).not.toContain(secret);
    expect(minted.id).not.toContain(secret);
  });

  it("mints a different token every time", () => {
    const minted = Array.from({ length: 200 }, () => mintToken());
    expect(new Set(minted.map((m) => m.token)).size).toBe(200);
    expect(new Set(minted.map((m) => m.id)).size).toBe(200);
    expect(new Set(minted.map((m) => m.hash)).size).toBe(200);
  });

  it("parses a minted token back into its id and secret", () => {
    for (let i = 0; i < 50; i++) {
      const minted = mintToken();
      const parsed = parseToken(minted.token);
      expect(parsed).toEqual({ id: minted.id, secret: minted.token.slice(`ferry_${minted.id}_`.length) });
      expect(secretMatches(parsed!.secret, minted.hash)).toBe(true);
    }
  });

  it("splits by length, not by the separator, when the parts contain _", () => {
    const id = "a_b_c-d_e_f_";
    const secret = `_${"x_".repeat(21)}`;
    expect(id).toHaveLength(12);
    expect(secret).toHaveLength(43);
    expect(parseToken(`ferry_${id}_${secret}`)).toEqual({ id, secret });
  });

  it("rejects malformed and near-miss tokens", () => {
    const id = "A".repeat(12);
    const secret = "b".repeat(43);
    const good = `ferry_${id}_${secret}`;
    expect(parseToken(good)).toEqual({ id, secret });
    for (const bad of [
      "",
      "ferry_",
      "ferry__",
      secret,
      `${id}_${secret}`,
      `Ferry_${id}_${secret}`,
      `FERRY_${id}_${secret}`,
      `ferri_${id}_${secret}`,
      `ferry-${id}-${secret}`,
      `ferry_${id}${secret}`,
      `ferry_${id.slice(1)}_${secret}`,
      `ferry_${id}A_${secret}`,
      `ferry_${id}_${secret.slice(1)}`,
      `ferry_${id}_${secret}b`,
      `ferry_${id}_${secret.slice(1)}=`,
      `ferry_${id}_${secret.slice(1)}+`,
      `ferry_${id}_${secret.slice(1)}/`,
      `ferry_${id.slice(1)}é_${secret}`,
      ` ${good}`,
      `${good} `,
      `${good}\n`,
      `\n${good}`,
      `Bearer ${good}`,
      `${good}${good}`,
    ]) {
      expect(parseToken(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it("matches the right secret only", () => {
    const minted = mintToken();
    const { secret } = parseToken(minted.token)!;
    expect(secretMatches(secret, minted.hash)).toBe(true);
    expect(secretMatches(parseToken(mintToken().token)!.secret, minted.hash)).toBe(false);
    // One character off.
    const flipped = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    expect(secretMatches(flipped, minted.hash)).toBe(false);
    expect(secretMatches("", minted.hash)).toBe(false);
    // The stored hash itself is not a secret that matches it.
    expect(secretMatches(minted.hash, minted.hash)).toBe(false);
  });

  it("answers false, without throwing, for a stored hash of another size", () => {
    const minted = mintToken();
    const { secret } = parseToken(minted.token)!;
    for (const hash of [
      "",
      minted.hash.slice(0, 20),
      `${minted.hash}AAAA`,
      createHash("sha512").update(secret).digest("base64url"),
      createHash("sha1").update(secret).digest("base64url"),
    ]) {
      expect(secretMatches(secret, hash)).toBe(false);
    }
  });
});

describe("user and grant names", () => {
  it("accepts plain user names up to 64 characters", () => {
    for (const name of [
      "admin",
      "a",
      "alice.smith",
      "bob@example.com",
      "ci-bot_2",
      "0day",
      "a".repeat(64),
      "constructor",
    ]) {
      expect(checkUserName(name)).toBe(name);
    }
  });

  it("refuses any other user name with FERRY_INVALID_ARGUMENT", () => {
    for (const name of [
      "__proto__",
      "../x",
      "",
      "a".repeat(65),
      "a b",
      ".hidden",
      "-x",
      "_x",
      "x/y",
      "x\n",
      "Zoë",
      42,
      null,
      undefined,
    ]) {
      expect(() => checkUserName(name), String(name)).toThrow(code(ErrorCode.InvalidArgument));
      expect(() => createToken(EMPTY_ACCESS, { user: name as string, now: NOW }), String(name)).toThrow(
        code(ErrorCode.InvalidArgument),
      );
    }
  });

  it("takes roles and dotted handler names as grants", () => {
    expect(parseGrant("admin")).toEqual({ kind: "role", role: "admin" });
    expect(parseGrant("submitter")).toEqual({ kind: "role", role: "submitter" });
    expect(parseGrant("viewer")).toEqual({ kind: "role", role: "viewer" });
    expect(parseGrant("sql.exec")).toEqual({ kind: "handler", handler: "sql.exec" });
  });

  it("refuses paths, URLs and other junk as grants with FERRY_INVALID_ARGUMENT", () => {
    const data = withUsers(["root", "admin"], ["bob", "submitter"]);
    for (const bad of [
      "../etc",
      "http://x",
      "",
      "sql..exec",
      ".sql",
      "sql.",
      "/bin/sh",
      "__proto__",
      "a b",
      "admn",
      "Admin",
      7,
      null,
    ]) {
      expect(() => parseGrant(bad), String(bad)).toThrow(code(ErrorCode.InvalidArgument));
      expect(() => grant(data, { by: "root", user: "bob", grant: bad as string }), String(bad)).toThrow(
        code(ErrorCode.InvalidArgument),
      );
      expect(() => revoke(data, { user: "bob", grant: bad as string }), String(bad)).toThrow(
        code(ErrorCode.InvalidArgument),
      );
    }
  });
});

describe("createToken", () => {
  it("creates a new user as a submitter by default", () => {
    const { data, minted } = createToken(EMPTY_ACCESS, { user: "alice", now: NOW });
    expect(data).toEqual({
      v: 1,
      users: [
        {
          name: "alice",
          roles: ["submitter"],
          grants: [],
          tokens: [{ id: minted.id, hash: minted.hash, createdAt: NOW }],
          createdAt: NOW,
        },
      ],
    });
    expect(parseToken(minted.token)?.id).toBe(minted.id);
    // The document never holds the token itself.
    expect(JSON.stringify(data)).not.toContain(minted.token);
    expect(JSON.stringify(data)).not.toContain(parseToken(minted.token)!.secret);
    // The input is left as it was.
    expect(EMPTY_ACCESS).toEqual({ v: 1, users: [] });
  });

  it("creates a new user with the role asked for", () => {
    for (const role of ["admin", "submitter", "viewer"] as const) {
      const { data } = createToken(EMPTY_ACCESS, { user: "u", role, now: NOW });
      expect(findUser(data, "u")?.roles).toEqual([role]);
    }
  });

  it("uses a token minted beforehand", () => {
    const minted = mintToken();
    const made = createToken(EMPTY_ACCESS, { user: "admin", role: "admin", now: NOW, minted });
    expect(made.minted).toBe(minted);
    expect(findUser(made.data, "admin")?.tokens).toEqual([
      { id: minted.id, hash: minted.hash, createdAt: NOW },
    ]);
  });

  it("adds tokens to an existing user, with no role or one it holds", () => {
    const first = createToken(EMPTY_ACCESS, { user: "bob", role: "viewer", now: NOW });
    const second = createToken(first.data, { user: "bob", now: NOW + 1 });
    const third = createToken(second.data, { user: "bob", role: "viewer", now: NOW + 2 });
    const bob = findUser(third.data, "bob")!;
    expect(third.data.users).toHaveLength(1);
    expect(bob.roles).toEqual(["viewer"]);
    expect(bob.createdAt).toBe(NOW);
    expect(bob.tokens.map((t) => t.id)).toEqual([first.minted.id, second.minted.id, third.minted.id]);
    expect(bob.tokens.map((t) => t.createdAt)).toEqual([NOW, NOW + 1, NOW + 2]);
    // Earlier documents are untouched.
    expect(findUser(first.data, "bob")!.tokens).toHaveLength(1);
  });

  it("refuses an existing user a role it does not hold", () => {
    const { data } = createToken(EMPTY_ACCESS, { user: "bob", role: "viewer", now: NOW });
    expect(() => createToken(data, { user: "bob", role: "admin", now: NOW })).toThrow(
      code(ErrorCode.InvalidArgument),
    );
    expect(() => createToken(data, { user: "bob", role: "submitter", now: NOW })).toThrow(
      code(ErrorCode.InvalidArgument),
    );
  });

  it("caps the tokens of one user at 10", () => {
    let data = EMPTY_ACCESS;
    for (let i = 0; i < 10; i++) data = createToken(data, { user: "bob", now: NOW + i }).data;
    expect(findUser(data, "bob")!.tokens).toHaveLength(10);
    expect(() => createToken(data, { user: "bob", now: NOW })).toThrow(code(ErrorCode.QuotaExceeded));
    // Another user is not affected by bob's cap.
    expect(findUser(createToken(data, { user: "carol", now: NOW }).data, "carol")!.tokens).toHaveLength(1);
    // After a revoke bob may have tokens again.
    const revoked = revokeTokens(data, "bob").data;
    expect(findUser(createToken(revoked, { user: "bob", now: NOW }).data, "bob")!.tokens).toHaveLength(1);
  });
});

describe("revokeTokens", () => {
  it("drops every token of the user and answers how many", () => {
    let data = withUsers(["root", "admin"], ["bob", "submitter"]);
    data = createToken(data, { user: "bob", now: NOW }).data;
    data = createToken(data, { user: "bob", now: NOW }).data;
    const result = revokeTokens(data, "bob");
    expect(result.revoked).toBe(3);
    expect(findUser(result.data, "bob")).toMatchObject({ name: "bob", roles: ["submitter"], tokens: [] });
    expect(findUser(result.data, "root")).toEqual(findUser(data, "root"));
    // Again: nothing left to revoke.
    expect(revokeTokens(result.data, "bob").revoked).toBe(0);
  });

  it("refuses an unknown user, and a bad name", () => {
    const data = withUsers(["root", "admin"]);
    expect(() => revokeTokens(data, "nobody")).toThrow(code(ErrorCode.NotFound));
    expect(() => revokeTokens(data, "__proto__")).toThrow(code(ErrorCode.InvalidArgument));
  });

  it("refuses to leave no admin with a live token", () => {
    const data = withUsers(["root", "admin"], ["bob", "submitter"]);
    expect(() => revokeTokens(data, "root")).toThrow(code(ErrorCode.PermissionDenied));
    expect(() => revokeTokens(data, "root")).toThrow(/last admin/);
  });

  it("does not count an admin without tokens as a live admin", () => {
    let data = withUsers(["root", "admin"], ["spare", "admin"]);
    data = revokeTokens(data, "spare").data;
    expect(() => revokeTokens(data, "root")).toThrow(code(ErrorCode.PermissionDenied));
  });

  it("allows it while another admin holds a token", () => {
    const data = withUsers(["root", "admin"], ["ops", "admin"]);
    const result = revokeTokens(data, "root");
    expect(result.revoked).toBe(1);
    expect(findUser(result.data, "root")!.tokens).toEqual([]);
    // Now ops is the last one.
    expect(() => revokeTokens(result.data, "ops")).toThrow(code(ErrorCode.PermissionDenied));
  });

  it("counts a submitter made admin by grant", () => {
    let data = withUsers(["root", "admin"], ["bob", "submitter"]);
    data = grant(data, { by: "root", user: "bob", grant: "admin" });
    expect(revokeTokens(data, "root").revoked).toBe(1);
  });
});

describe("grant and revoke", () => {
  it("refuses a user granting to itself", () => {
    const data = withUsers(["root", "admin"]);
    expect(() => grant(data, { by: "root", user: "root", grant: "viewer" })).toThrow(
      code(ErrorCode.PermissionDenied),
    );
    expect(() => grant(data, { by: "root", user: "root", grant: "sql.exec" })).toThrow(
      code(ErrorCode.PermissionDenied),
    );
  });

  it("refuses unknown users", () => {
    const data = withUsers(["root", "admin"]);
    expect(() => grant(data, { by: "root", user: "ghost", grant: "viewer" })).toThrow(
      code(ErrorCode.NotFound),
    );
    expect(() => revoke(data, { user: "ghost", grant: "viewer" })).toThrow(code(ErrorCode.NotFound));
  });

  it("refuses bad user names", () => {
    const data = withUsers(["root", "admin"]);
    for (const user of ["__proto__", "../x", "", "a".repeat(65), "a b"]) {
      expect(() => grant(data, { by: "root", user, grant: "viewer" })).toThrow(
        code(ErrorCode.InvalidArgument),
      );
      expect(() => revoke(data, { user, grant: "viewer" })).toThrow(code(ErrorCode.InvalidArgument));
    }
  });

  it("adds roles and handler grants once", () => {
    const before = withUsers(["root", "admin"], ["bob", "viewer"]);
    let data = grant(before, { by: "root", user: "bob", grant: "submitter" });
    data = grant(data, { by: "root", user: "bob", grant: "submitter" });
    data = grant(data, { by: "root", user: "bob", grant: "sql.exec" });
    data = grant(data, { by: "root", user: "bob", grant: "sql.exec" });
    data = grant(data, { by: "root", user: "bob", grant: "viewer" });
    data = grant(data, { by: "root", user: "bob", grant: "report.build" });
    const bob = findUser(data, "bob")!;
    expect(bob.roles).toEqual(["viewer", "submitter"]);
    expect(bob.grants).toEqual(["sql.exec", "report.build"]);
    expect(topRole(bob)).toBe("submitter");
    // Tokens and other users are untouched.
    expect(bob.tokens).toEqual(findUser(before, "bob")!.tokens);
    expect(findUser(data, "root")).toEqual(findUser(before, "root"));
  });

  it("takes roles and handler grants away", () => {
    let data = withUsers(["root", "admin"], ["bob", "submitter"]);
    data = grant(data, { by: "root", user: "bob", grant: "sql.exec" });
    data = grant(data, { by: "root", user: "bob", grant: "viewer" });
    data = revoke(data, { user: "bob", grant: "sql.exec" });
    data = revoke(data, { user: "bob", grant: "submitter" });
    expect(findUser(data, "bob")).toMatchObject({ roles: ["viewer"], grants: [] });
    // Revoking what is not held changes nothing.
    expect(revoke(data, { user: "bob", grant: "admin" })).toEqual(data);
    data = revoke(data, { user: "bob", grant: "viewer" });
    expect(findUser(data, "bob")!.roles).toEqual([]);
    expect(topRole(findUser(data, "bob")!)).toBeUndefined();
  });

  it("refuses to take the admin role from the last admin", () => {
    const data = withUsers(["root", "admin"], ["bob", "submitter"]);
    expect(() => revoke(data, { user: "root", grant: "admin" })).toThrow(code(ErrorCode.PermissionDenied));
    // A handler grant or another role may still go.
    const granted = grant(data, { by: "bob", user: "root", grant: "sql.exec" });
    expect(findUser(revoke(granted, { user: "root", grant: "sql.exec" }), "root")!.grants).toEqual([]);
  });

  it("allows it while another admin holds a token", () => {
    let data = withUsers(["root", "admin"], ["bob", "submitter"]);
    data = grant(data, { by: "root", user: "bob", grant: "admin" });
    data = revoke(data, { user: "root", grant: "admin" });
    expect(findUser(data, "root")!.roles).toEqual([]);
    expect(() => revoke(data, { user: "bob", grant: "admin" })).toThrow(code(ErrorCode.PermissionDenied));
  });

  it("orders roles admin, submitter, viewer", () => {
    let data = withUsers(["root", "admin"], ["bob", "viewer"]);
    expect(topRole(findUser(data, "bob")!)).toBe("viewer");
    data = grant(data, { by: "root", user: "bob", grant: "admin" });
    data = grant(data, { by: "root", user: "bob", grant: "submitter" });
    expect(findUser(data, "bob")!.roles).toEqual(["viewer", "admin", "submitter"]);
    expect(topRole(findUser(data, "bob")!)).toBe("admin");
  });
});

describe("the encoded document", () => {
  it("decodes nothing as the empty document", () => {
    expect(decodeAccess(undefined)).toEqual({ v: 1, users: [] });
  });

  it("round-trips through encode and decode", () => {
    let data = withUsers(["root", "admin"], ["bob@example.com", "submitter"], ["viewer.1", "viewer"]);
    data = grant(data, { by: "root", user: "bob@example.com", grant: "sql.exec" });
    data = createToken(data, { user: "bob@example.com", now: NOW + 5 }).data;
    const bytes = encodeAccess(data);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(decodeAccess(bytes)).toEqual(data);
    expect(decodeAccess(encodeAccess(decodeAccess(bytes)))).toEqual(data);
    expect(decodeAccess(encodeAccess(EMPTY_ACCESS))).toEqual(EMPTY_ACCESS);
  });

  it("refuses a damaged document with FERRY_STORE_UNAVAILABLE", () => {
    const good = withUsers(["root", "admin"]);
    const user = good.users[0]!;
    const damaged: unknown[] = [
      null,
      [],
      "x",
      42,
      {},
      { v: 1 },
      { users: [] },
      { v: 2, users: [] },
      { v: "1", users: [] },
      { v: 1, users: {} },
      { v: 1, users: [], extra: true },
      { v: 1, users: [{ ...user, extra: true }] },
      { v: 1, users: [{ ...user, roles: ["root"] }] },
      { v: 1, users: [{ ...user, name: "__proto__" }] },
      { v: 1, users: [{ ...user, name: "../x" }] },
      { v: 1, users: [{ ...user, tokens: [{ ...user.tokens[0], secret: "s" }] }] },
      { v: 1, users: [{ ...user, tokens: [{ ...user.tokens[0], hash: "" }] }] },
      { v: 1, users: [{ ...user, createdAt: 1.5 }] },
      { v: 1, users: [{ name: user.name, roles: user.roles, grants: user.grants, createdAt: NOW }] },
    ];
    for (const value of damaged) {
      const bytes = Buffer.from(JSON.stringify(value), "utf8");
      expect(() => decodeAccess(bytes), JSON.stringify(value)).toThrow(code(ErrorCode.StoreUnavailable));
    }
    // A __proto__ key written literally (JSON.parse makes it an own key).
    const proto = Buffer.from('{"v":1,"users":[],"__proto__":{"admin":true}}', "utf8");
    expect(() => decodeAccess(proto)).toThrow(code(ErrorCode.StoreUnavailable));
  });

  it("refuses to grow past 512 KiB with FERRY_QUOTA_EXCEEDED", () => {
    const data = withUsers(["root", "admin"]);
    const grants = Array.from({ length: 3_000 }, (_, i) => `plugin${i}.${"h".repeat(180)}`);
    const big: AccessData = { ...data, users: data.users.map((u) => ({ ...u, grants })) };
    expect(() => encodeAccess(big)).toThrow(code(ErrorCode.QuotaExceeded));
    expect(encodeAccess(data).length).toBeLessThan(1_000);
  });

  it("refuses bytes that are not JSON at all with FERRY_STORE_UNAVAILABLE", () => {
    const encoded = encodeAccess(withUsers(["root", "admin"]));
    for (const bytes of [
      new Uint8Array(0),
      encoded.subarray(0, encoded.length - 1),
      encoded.subarray(1),
      new Uint8Array([0xff, 0xfe, 0x00, 0x01]),
      Buffer.from("not json", "utf8"),
    ]) {
      expect(() => decodeAccess(bytes)).toThrow(code(ErrorCode.StoreUnavailable));
    }
  });
});
