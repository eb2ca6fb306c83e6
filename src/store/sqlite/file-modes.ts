/**
 * The database file and its `-wal` and `-shm` hold payloads, results and the daemon's token
 * hashes: only the store's own user may read them.
 *
 * - A new database is created 0600 before SQLite opens it. SQLite gives the `-wal`, `-shm` and
 *   `-journal` files it creates the database's own mode, whatever the umask, so they follow.
 * - An existing one that grants its group or others anything (an older Ferry left 0644 under the
 *   usual umask 022) is narrowed to its owner's bits, together with the files beside it, and the
 *   store says so in `notices`. A file the process may not chmod stays as it is, with a notice.
 */
import { chmodSync, closeSync, constants, openSync, statSync } from "node:fs";

/** Bits for the group and for others: none may be set on a store file. */
const SHARED_BITS = 0o077;

const SIDE_FILES = ["", "-wal", "-shm", "-journal"] as const;

/** Creates the database 0600 if missing and narrows what exists; answers notices for an operator. */
export function guardDatabaseFiles(path: string): string[] {
  if (path === ":memory:" || path === "" || path.startsWith("file:")) return [];
  try {
    closeSync(openSync(path, constants.O_CREAT | constants.O_RDWR, 0o600));
  } catch {
    // A missing folder or a read-only file: SQLite's own open reports it in its words.
    return [];
  }
  const notices: string[] = [];
  for (const suffix of SIDE_FILES) {
    const file = `${path}${suffix}`;
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if ((mode & SHARED_BITS) === 0) continue;
    const narrowed = mode & ~SHARED_BITS;
    try {
      chmodSync(file, narrowed);
      notices.push(
        `${file} was open to its group or others (mode ${octal(mode)}): narrowed to ${octal(narrowed)}`,
      );
    } catch (error) {
      notices.push(
        `${file} is open to its group or others (mode ${octal(mode)}) and could not be narrowed ` +
          `(${(error as NodeJS.ErrnoException).code ?? "error"}): chmod 600 it`,
      );
    }
  }
  return notices;
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, "0")}`;
