/**
 * How a process-isolated plugin, wherever its folder lies, imports `ferry` and `ferry/plugin`
 * without a resolve hook. Node 20 runs loader hooks (`module.register`, `--import`,
 * `--experimental-loader`) on a worker thread, which the permission model refuses without
 * `--allow-worker`, and that flag would let the plugin start threads too. So the plugin is given
 * an ancestor where Node's own lookup finds Ferry:
 *
 *   ROOT/                      a private folder of the daemon's, 0755, read-only to the plugin
 *     node_modules/ferry/      package.json + two one-line modules re-exporting Ferry's entries
 *     srv/plugins/acme  ->     a symlink to the real folder /srv/plugins/acme
 *
 * The host imports ROOT/srv/plugins/acme/index.mjs under `--preserve-symlinks`, so module paths
 * keep ROOT: a bare `ferry` is looked for in the plugin's own node_modules first (through the
 * link), then in the folders above it, which are ROOT's, up to ROOT/node_modules/ferry. The real
 * folders above the plugin are never searched. Mirroring the real path keeps every other path
 * telling: a relative import that leaves the folder lands in ROOT, where nothing is, and the host
 * reports it by its real path (ROOT stripped).
 *
 * ROOT is /tmp/ferry-plugin-PID-XXXXXX, PID the daemon's. A daemon removes its roots when it stops,
 * but one killed outright (SIGKILL, the OOM killer) cannot: the next daemon to start removes those
 * whose daemon is gone (`sweepStaleResolveRoots`).
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { FERRY_ENTRIES } from "./ferry-files.js";

const PREFIX = "ferry-plugin-";
/** A root's name: the prefix, its daemon's pid, then mkdtemp's six letters and digits. */
const ROOT_NAME = /^ferry-plugin-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

export interface ResolveRoot {
  /** The private folder; the plugin's folder is reached as `path + folder`. */
  readonly path: string;
  remove(): void;
}

/** Makes the private folder for the plugin at `folder` (a real path). */
export function createResolveRoot(folder: string): ResolveRoot {
  // mkdtemp in the sticky, root-owned tmp: nobody else can rename or replace what we make in it.
  // The pid in the name tells a later daemon whether this one is still there to use it.
  const path = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
  try {
    const ferry = join(path, "node_modules", "ferry");
    mkdirSync(ferry, { recursive: true });
    const exports: Record<string, string> = {};
    for (const [specifier, file] of Object.entries(FERRY_ENTRIES)) {
      const name = specifier === "." ? "index.js" : `${specifier.slice(2)}.js`;
      exports[specifier] = `./${name}`;
      writeFileSync(join(ferry, name), `export * from ${JSON.stringify(pathToFileURL(file).href)};\n`, {
        mode: 0o444,
      });
    }
    const pkg = { name: "ferry", private: true, type: "module", exports };
    writeFileSync(join(ferry, "package.json"), `${JSON.stringify(pkg)}\n`, { mode: 0o444 });
    const link = join(path, folder);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(folder, link);
    // Readable by the plugin's user (another one when the daemon is root), writable by no one.
    setFolderModes(path, 0o555);
  } catch (error) {
    remove(path);
    throw error;
  }
  return { path, remove: () => remove(path) };
}

function remove(path: string): void {
  // Its folders are read-only: give the owner write back first, or rm cannot empty them.
  try {
    setFolderModes(path, 0o700);
  } catch {
    // Gone already.
  }
  rmSync(path, { recursive: true, force: true });
}

/** `mode` on `path` and every folder below it; never through a symlink (the plugin's folder). */
function setFolderModes(path: string, mode: number): void {
  chmodSync(path, mode);
  for (const entry of readdirSync(path, { withFileTypes: true }))
    if (entry.isDirectory()) setFolderModes(join(path, entry.name), mode);
}

/**
 * Removes the roots in `dir` (the system's temp folder) left by daemons that are gone, and answers
 * their paths. Only a real folder (never a symlink) named exactly as createResolveRoot names them,
 * owned by this user, whose daemon's pid no longer exists (ESRCH): a live daemon's roots stay,
 * and so does one whose pid was reused since, until that process ends too. Nothing in a root is
 * followed: rm unlinks its symlink to the plugin's folder. A root that cannot be removed now is left
 * for the next start.
 */
export function sweepStaleResolveRoots(dir: string = tmpdir()): string[] {
  const uid = process.getuid?.();
  if (uid === undefined) return [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(ROOT_NAME.exec(name)?.[1] ?? Number.NaN);
    if (Number.isNaN(pid) || pid === process.pid || processExists(pid)) continue;
    const path = join(dir, name);
    if (unlockStale(path, uid)) {
      try {
        remove(path);
        removed.push(path);
      } catch {
        // Left for the next start.
      }
    }
  }
  return removed;
}

/** Whether a process `pid` exists: one of another user's answers EPERM, and exists. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Whether `path` is a folder of `uid`'s, checked and made writable through one descriptor opened
 * without following a symlink, so the check and the change are of the same folder.
 */
function unlockStale(path: string, uid: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    // Gone meanwhile, a symlink (ELOOP) or not a folder (ENOTDIR): not ours to remove.
    return false;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isDirectory() || stat.uid !== uid) return false;
    fchmodSync(fd, 0o700);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
