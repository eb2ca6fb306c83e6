/**
 * The file checks a plugin passes before any of its code runs (rules in file-rules.ts): every
 * directory above its folder, and every file and folder inside it, node_modules included, since
 * the plugin may load any of them. No symlink may lead out of the folder. Each check answers the
 * reason for a refusal, or undefined when all is fine.
 */
import { lstat, readdir, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { type FileRules, type PluginUser, unreadable } from "./file-rules.js";

/** More entries than this in one plugin folder is refused rather than walked for ever. */
export const MAX_PLUGIN_ENTRIES = 100_000;

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? "error";

/** True when `path` is `folder` or below it. */
export function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** Reasons a path's own metadata refuses it as a plugin entry. */
export async function unsafeEntry(path: string, rules: FileRules): Promise<string | undefined> {
  try {
    return rules.entry(path, await lstat(path));
  } catch (error) {
    return `cannot read ${path}: ${errorCode(error)}`;
  }
}

/**
 * `dir` (a real path: no symlink in it) and each directory above it up to `/`: someone who may
 * write to any of them could swap the plugins below.
 */
export async function checkParents(dir: string, rules: FileRules): Promise<string | undefined> {
  for (let path = dir; ; path = dirname(path)) {
    try {
      const reason = rules.parent(path, await lstat(path));
      if (reason !== undefined) return reason;
    } catch (error) {
      return `cannot read ${path}: ${errorCode(error)}`;
    }
    if (dirname(path) === path) return undefined;
  }
}

/**
 * Every entry below `folder` (a real path), without following symlinks: each must pass
 * `rules.entry`, and each symlink must resolve inside the folder (where its target is checked in
 * turn). Anything but files, folders and such symlinks is refused.
 */
export async function checkTree(folder: string, rules: FileRules): Promise<string | undefined> {
  const pending = [folder];
  let seen = 0;
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (error) {
      return `cannot read ${dir}: ${errorCode(error)}`;
    }
    for (const name of names) {
      if (++seen > MAX_PLUGIN_ENTRIES) return `${folder} holds more than ${MAX_PLUGIN_ENTRIES} entries`;
      const path = join(dir, name);
      const stat = await lstat(path).catch((error: unknown) => error as NodeJS.ErrnoException);
      if (stat instanceof Error) return `cannot read ${path}: ${errorCode(stat)}`;
      if (stat.isSymbolicLink()) {
        const reason = await linkReason(folder, path);
        if (reason !== undefined) return reason;
        continue;
      }
      if (!stat.isDirectory() && !stat.isFile()) return `${path} is neither a file, a folder nor a symlink`;
      const reason = rules.entry(path, stat);
      if (reason !== undefined) return reason;
      if (stat.isDirectory()) pending.push(path);
    }
  }
  return undefined;
}

/** Why the symlink at `path` is refused: it leads out of `folder`, or to nothing. */
async function linkReason(folder: string, path: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await realpath(path);
  } catch (error) {
    return `${path} is a symlink that resolves to nothing (${errorCode(error)})`;
  }
  return inside(folder, target)
    ? undefined
    : `${path} is a symlink that leaves the plugin folder (to ${target})`;
}

/** Why `reader` cannot reach and read `file` (a real path): a folder above it it cannot enter, say. */
export async function unreachable(file: string, reader: PluginUser): Promise<string | undefined> {
  try {
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      const reason = unreadable(dir, await lstat(dir), reader, 0o1);
      if (reason !== undefined) return reason;
      if (dirname(dir) === dir) break;
    }
    return unreadable(file, await lstat(file), reader, 0o4);
  } catch (error) {
    return `cannot read ${file}: ${errorCode(error)}`;
  }
}

/**
 * Checks `file` (a path inside `folder`) and every directory between them. A symlink is followed
 * only when its target stays inside the folder; the target is checked too. Answers the file's
 * real path, or the reason to refuse it.
 */
export async function checkPluginFile(
  folder: string,
  file: string,
  rules: FileRules,
): Promise<{ ok: true; path: string } | { ok: false; reason: string }> {
  const target = resolve(folder, file);
  if (!inside(folder, target)) return { ok: false, reason: `${file} is outside the plugin folder ${folder}` };
  const realFolder = await realpath(folder);
  // Each step from the folder down to the file: a writable directory in between could swap the file.
  const steps = relative(folder, target)
    .split(sep)
    .filter((step) => step !== "");
  let path = folder;
  for (const step of steps) {
    path = resolve(path, step);
    const stat = await lstat(path).catch((error: unknown) => error as NodeJS.ErrnoException);
    if (stat instanceof Error) return { ok: false, reason: `cannot read ${path}: ${errorCode(stat)}` };
    if (stat.isSymbolicLink()) {
      const real = await realpath(path).catch(() => undefined);
      if (real === undefined || !inside(realFolder, real))
        return { ok: false, reason: `${path} is a symlink that leaves the plugin folder` };
      // A link's own mode is always 777: its target is what counts.
      const reason = await unsafeEntry(real, rules);
      if (reason !== undefined) return { ok: false, reason };
      continue;
    }
    const reason = rules.entry(path, stat);
    if (reason !== undefined) return { ok: false, reason };
  }
  return { ok: true, path: await realpath(target) };
}
