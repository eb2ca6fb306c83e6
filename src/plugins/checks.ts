/**
 * The file checks a plugin passes before any of its code runs: nothing on the way to it may be
 * writable by others or owned by another user, and no symlink may lead out of its folder.
 * Each check answers the reason for a refusal, or undefined when the path is fine.
 */
import { lstat, realpath } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";

/** Reasons a path's own metadata refuses it. */
export async function unsafeEntry(path: string): Promise<string | undefined> {
  let stat: Awaited<ReturnType<typeof lstat>>;
  try {
    stat = await lstat(path);
  } catch (error) {
    return `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`;
  }
  return unsafeStat(path, stat);
}

function unsafeStat(path: string, stat: { mode: number; uid: number }): string | undefined {
  if ((stat.mode & 0o002) !== 0) return `${path} is world-writable (mode ${(stat.mode & 0o777).toString(8)})`;
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid)
    return `${path} is owned by uid ${stat.uid}, not by this user (${uid})`;
  return undefined;
}

/** True when `path` is `folder` or below it. */
export function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * Checks `file` (a path inside `folder`) and every directory between them. A symlink is followed
 * only when its target stays inside the folder; the target is checked too. Answers the file's
 * real path, or the reason to refuse it.
 */
export async function checkPluginFile(
  folder: string,
  file: string,
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
    const stat = await lstat(path).catch((error: NodeJS.ErrnoException) => error);
    if (stat instanceof Error) return { ok: false, reason: `cannot read ${path}: ${stat.code ?? "error"}` };
    if (stat.isSymbolicLink()) {
      const real = await realpath(path).catch(() => undefined);
      if (real === undefined || !inside(realFolder, real))
        return { ok: false, reason: `${path} is a symlink that leaves the plugin folder` };
      // A link's own mode is always 777: its target is what counts.
      const reason = await unsafeEntry(real);
      if (reason !== undefined) return { ok: false, reason };
      continue;
    }
    const reason = unsafeStat(path, stat);
    if (reason !== undefined) return { ok: false, reason };
  }
  return { ok: true, path: await realpath(target) };
}
