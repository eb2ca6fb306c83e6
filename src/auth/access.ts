/**
 * The access document: every user of a daemon, their roles, handler grants and token hashes. It
 * lives in the store (Store.readAccess/writeAccess) so daemons sharing a store share their users,
 * and every change below is a pure function from one document to the next, checked whole: the
 * rules that span users (the last admin stays) hold whichever daemon writes.
 *
 * Users are an array of entries, not an object keyed by name, so no user name can ever be a
 * prototype key.
 */
import { z } from "zod";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import { checkHandlerName } from "../core/names.js";
import { type MintedToken, mintToken } from "./tokens.js";

export const ROLES = ["admin", "submitter", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** User names: letters, digits and `. _ @ -`, starting with a letter or digit. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** Tokens a user may hold at once: enough to rotate, not enough to bloat the document. */
const MAX_TOKENS_PER_USER = 10;
/** Users in one document. */
const MAX_USERS = 2_000;
/** A document stays well under NATS's default 1 MB message limit, whatever its users hold. */
const MAX_DOCUMENT_BYTES = 512 * 1024;

const tokenEntry = z.strictObject({
  id: z.string().min(1).max(64),
  hash: z.string().min(1).max(128),
  createdAt: z.number().int(),
});

const userEntry = z.strictObject({
  name: z.string().regex(USER_NAME),
  roles: z.array(z.enum(ROLES)),
  /** Handler names this user may launch although they are restricted (e.g. `sql.exec`). */
  grants: z.array(z.string().max(200)),
  tokens: z.array(tokenEntry),
  createdAt: z.number().int(),
});

const documentSchema = z.strictObject({ v: z.literal(1), users: z.array(userEntry) });

export type TokenEntry = z.output<typeof tokenEntry>;
export type UserEntry = z.output<typeof userEntry>;
export type AccessData = z.output<typeof documentSchema>;

export const EMPTY_ACCESS: AccessData = { v: 1, users: [] };

export function decodeAccess(bytes: Uint8Array | undefined): AccessData {
  if (bytes === undefined) return EMPTY_ACCESS;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    json = undefined; // not JSON at all (truncated, overwritten): as damaged as a wrong shape
  }
  const parsed = documentSchema.safeParse(json);
  if (!parsed.success) {
    // Only Ferry writes it: a bad document is damage, and nobody should be let in on a guess.
    throw new FerryError(ErrorCode.StoreUnavailable, "the stored access document is damaged");
  }
  return parsed.data;
}

export function encodeAccess(data: AccessData): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(data), "utf8");
  if (bytes.length > MAX_DOCUMENT_BYTES) {
    throw new FerryError(
      ErrorCode.QuotaExceeded,
      "the access document is full: revoke unused tokens, grants or users first",
    );
  }
  return bytes;
}

export function checkUserName(name: unknown): string {
  if (typeof name !== "string" || !USER_NAME.test(name)) {
    throw invalidArgument(
      "user must be 1-64 characters of letters, digits and . _ @ -, starting with a letter or digit",
    );
  }
  return name;
}

/** A role (`admin`, `submitter`, `viewer`) or a handler grant (`sql.exec`). */
export type GrantName =
  | { readonly kind: "role"; readonly role: Role }
  | { readonly kind: "handler"; readonly handler: string };

export function parseGrant(name: unknown): GrantName {
  if ((ROLES as readonly unknown[]).includes(name)) return { kind: "role", role: name as Role };
  // A handler grant names a dotted handler (`sql.exec`, a plugin's `NAME.HANDLER`): a one-word
  // grant is a mistyped role ("admn"), refused rather than stored as a grant nothing needs.
  if (typeof name === "string" && name.includes(".")) {
    try {
      return { kind: "handler", handler: checkHandlerName(name) };
    } catch {
      // falls through to the refusal below
    }
  }
  throw invalidArgument(
    `grant must be a role (${ROLES.join(", ")}) or a dotted handler name like "sql.exec"`,
  );
}

export function findUser(data: AccessData, name: string): UserEntry | undefined {
  return data.users.find((user) => user.name === name);
}

/** The strongest role of a user: admin, then submitter, then viewer; undefined for none. */
export function topRole(user: UserEntry): Role | undefined {
  return ROLES.find((role) => user.roles.includes(role));
}

function denied(message: string): FerryError {
  return new FerryError(ErrorCode.PermissionDenied, message);
}

function withUser(data: AccessData, name: string, change: (user: UserEntry) => UserEntry): AccessData {
  return { ...data, users: data.users.map((user) => (user.name === name ? change(user) : user)) };
}

/** Admins that can still sign in: the ones the rules keep at least one of. */
function liveAdmins(data: AccessData): number {
  return data.users.filter((user) => user.roles.includes("admin") && user.tokens.length > 0).length;
}

/** Refuse a change that would leave a document that had a live admin without one. */
function keepAnAdmin(before: AccessData, after: AccessData): AccessData {
  if (liveAdmins(before) > 0 && liveAdmins(after) === 0) {
    throw denied("the last admin cannot be revoked: make another admin first");
  }
  return after;
}

/**
 * A new token for `user`, creating the user (with `role`, default `submitter`) when it is new.
 * For an existing user `role`, when given, must be one it holds: roles change by grant, never as a
 * side effect of a token.
 */
export function createToken(
  data: AccessData,
  request: {
    readonly user: string;
    readonly role?: Role | undefined;
    readonly now: number;
    /** A token minted beforehand (the first admin's, already in its file). */
    readonly minted?: MintedToken;
  },
): { readonly data: AccessData; readonly minted: MintedToken } {
  const name = checkUserName(request.user);
  const minted = request.minted ?? mintToken();
  const token: TokenEntry = { id: minted.id, hash: minted.hash, createdAt: request.now };
  const existing = findUser(data, name);
  if (existing === undefined) {
    if (data.users.length >= MAX_USERS)
      throw new FerryError(ErrorCode.QuotaExceeded, `at most ${MAX_USERS} users`);
    const user: UserEntry = {
      name,
      roles: [request.role ?? "submitter"],
      grants: [],
      tokens: [token],
      createdAt: request.now,
    };
    return { data: { ...data, users: [...data.users, user] }, minted };
  }
  if (request.role !== undefined && !existing.roles.includes(request.role)) {
    throw invalidArgument(
      `${name} exists without role ${request.role}: grant it first (ferry grant ${request.role} ${name})`,
    );
  }
  if (existing.tokens.length >= MAX_TOKENS_PER_USER) {
    throw new FerryError(
      ErrorCode.QuotaExceeded,
      `${name} holds ${MAX_TOKENS_PER_USER} tokens already: revoke them first`,
    );
  }
  return { data: withUser(data, name, (user) => ({ ...user, tokens: [...user.tokens, token] })), minted };
}

/** Every token of `user` stops working. Answers how many were revoked. */
export function revokeTokens(
  data: AccessData,
  userName: string,
): { readonly data: AccessData; readonly revoked: number } {
  const user = findUser(data, checkUserName(userName));
  if (user === undefined) throw new FerryError(ErrorCode.NotFound, "no such user");
  const after = withUser(data, user.name, (entry) => ({ ...entry, tokens: [] }));
  return { data: keepAnAdmin(data, after), revoked: user.tokens.length };
}

/** Give `user` a role or a handler grant. Nobody grants to itself. */
export function grant(
  data: AccessData,
  request: { readonly by: string; readonly user: string; readonly grant: string },
): AccessData {
  const name = checkUserName(request.user);
  const what = parseGrant(request.grant);
  if (name === request.by) throw denied("a user cannot grant itself");
  if (findUser(data, name) === undefined) {
    throw new FerryError(ErrorCode.NotFound, `no such user: create it with ferry token create ${name}`);
  }
  return withUser(data, name, (user) =>
    what.kind === "role"
      ? { ...user, roles: user.roles.includes(what.role) ? user.roles : [...user.roles, what.role] }
      : {
          ...user,
          grants: user.grants.includes(what.handler) ? user.grants : [...user.grants, what.handler],
        },
  );
}

/** Take a role or a handler grant away from `user`. The last admin keeps its role. */
export function revoke(
  data: AccessData,
  request: { readonly user: string; readonly grant: string },
): AccessData {
  const name = checkUserName(request.user);
  const what = parseGrant(request.grant);
  if (findUser(data, name) === undefined) throw new FerryError(ErrorCode.NotFound, "no such user");
  const after = withUser(data, name, (user) =>
    what.kind === "role"
      ? { ...user, roles: user.roles.filter((role) => role !== what.role) }
      : { ...user, grants: user.grants.filter((handler) => handler !== what.handler) },
  );
  return keepAnAdmin(data, after);
}
