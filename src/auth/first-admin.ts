/**
 * First start with authentication on and nobody to authenticate: make a user `admin` with one
 * token, and put the token in a file only the daemon's user can read (0600). The log names the
 * file, never the token. Daemons starting together on one store agree through the access
 * document's compare-and-set: one makes the admin, the others find it made.
 */
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { createToken } from "./access.js";
import type { AccessControl } from "./access-control.js";
import { mintToken } from "./tokens.js";

export const FIRST_ADMIN = "admin";

/** Answers the file's path when this call made the first admin, undefined when users existed. */
export async function ensureFirstAdmin(
  access: AccessControl,
  file: string,
  now: number,
): Promise<string | undefined> {
  await access.refresh();
  if (access.data.users.length > 0) return undefined;
  // The token reaches a file before the store: a stored admin token nobody can read locks
  // everyone out. Written aside and moved in place only if this daemon's write wins.
  const minted = mintToken();
  const aside = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(aside, `${minted.token}\n`, { mode: 0o600, flag: "wx" });
  try {
    const made = await access.change((data) =>
      data.users.length > 0
        ? { data, answer: false }
        : { data: createToken(data, { user: FIRST_ADMIN, role: "admin", now, minted }).data, answer: true },
    );
    if (!made) return undefined;
    await rename(aside, file);
    return file;
  } finally {
    await rm(aside, { force: true });
  }
}
