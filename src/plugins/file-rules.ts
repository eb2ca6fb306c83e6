/**
 * Who may change a file the daemon will run, and who may read it: the rules OpenSSH's StrictModes
 * applies to `~/.ssh`, for plugin files. A path may be owned by root or by the daemon's user, and
 * written by nobody else: not world-writable, and group-writable only when that group holds no one
 * but the daemon's user (and root). A parent directory may also be a root-owned sticky directory
 * such as `/tmp`: others may add entries there, but not rename or remove ours.
 */
import { readFileSync } from "node:fs";

/** The user plugin processes run as: the daemon's own, or an unprivileged one when it is root. */
export interface PluginUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** What `lstat` says of a path, as far as these rules need it. */
export interface Metadata {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  isDirectory(): boolean;
}

export interface FileRules {
  /** Why a path inside a plugin folder (the folder included) is refused, or undefined. */
  entry(path: string, stat: Metadata): string | undefined;
  /** Why a directory above the plugin folders (the plugin dir up to `/`) is refused, or undefined. */
  parent(path: string, stat: Metadata): string | undefined;
}

const S_ISVTX = 0o1000;
const mode = (stat: Metadata) => (stat.mode & 0o7777).toString(8);

/**
 * The rules for a daemon running as `daemon` whose plugins run as `reader`, who must be able to read
 * every plugin file and pass through every folder above it.
 */
export function fileRules(daemon: PluginUser, reader: PluginUser): FileRules {
  const groups = lazyGroups();
  const writers = (path: string, stat: Metadata, sticky: boolean): string | undefined => {
    if (stat.uid !== 0 && stat.uid !== daemon.uid)
      return `${path} is owned by uid ${stat.uid}, neither root nor this user (${daemon.uid})`;
    // A root-owned sticky directory (/tmp): others may add entries, never touch ours.
    if (sticky && stat.isDirectory() && stat.uid === 0 && (stat.mode & S_ISVTX) !== 0) return undefined;
    if ((stat.mode & 0o002) !== 0) return `${path} is world-writable (mode ${mode(stat)})`;
    if ((stat.mode & 0o020) !== 0 && !groups.onlyHolds(stat.gid, daemon))
      return `${path} is group-writable (mode ${mode(stat)}) and its group ${stat.gid} has other members`;
    return undefined;
  };
  return {
    entry: (path, stat) => {
      const needs = stat.isDirectory() ? 0o5 : 0o4;
      return writers(path, stat, false) ?? unreadable(path, stat, reader, needs);
    },
    parent: (path, stat) => writers(path, stat, true) ?? unreadable(path, stat, reader, 0o1),
  };
}

/** Why `reader` cannot read (4) or pass through (1) `path`, judged by its mode bits. */
export function unreadable(
  path: string,
  stat: Metadata,
  reader: PluginUser,
  needs: number,
): string | undefined {
  if (reader.uid === 0) return undefined;
  const bits =
    stat.uid === reader.uid ? stat.mode >> 6 : stat.gid === reader.gid ? stat.mode >> 3 : stat.mode;
  if ((bits & needs) === needs) return undefined;
  const what = needs === 0o1 ? "enter" : "read";
  return `${path} (mode ${mode(stat)}) is one the plugin user ${reader.name} (uid ${reader.uid}) cannot ${what}`;
}

/**
 * Group membership from /etc/group and /etc/passwd, read once when first needed. A group these
 * files do not know (one from LDAP, say) counts as having other members: nothing says it does not.
 */
function lazyGroups() {
  let known:
    | { members: Map<number, string[]>; primaryOf: Map<number, number[]>; names: Map<number, string> }
    | undefined;
  const load = () => {
    if (known !== undefined) return known;
    const members = new Map(
      lines("/etc/group").map((fields) => [Number(fields[2]), (fields[3] ?? "").split(",").filter(Boolean)]),
    );
    const primaryOf = new Map<number, number[]>();
    const names = new Map<number, string>();
    for (const fields of lines("/etc/passwd")) {
      const uid = Number(fields[2]);
      const gid = Number(fields[3]);
      names.set(uid, fields[0]!);
      primaryOf.set(gid, [...(primaryOf.get(gid) ?? []), uid]);
    }
    known = { members, primaryOf, names };
    return known;
  };
  return {
    /** True when only root and the daemon's user are in group `gid` (listed, or as their primary group). */
    onlyHolds(gid: number, daemon: PluginUser): boolean {
      const { members, primaryOf, names } = load();
      const listed = members.get(gid);
      if (listed === undefined) return false;
      const allowed = new Set(["root", daemon.name, names.get(daemon.uid)]);
      if (listed.some((name) => !allowed.has(name))) return false;
      return (primaryOf.get(gid) ?? []).every((uid) => uid === 0 || uid === daemon.uid);
    },
  };
}

/** The colon-separated fields of each line of a passwd-style file; none when it cannot be read. */
export function lines(file: string): string[][] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"))
    .filter((fields) => fields.length >= 4 && /^\d+$/.test(fields[2]!));
}
