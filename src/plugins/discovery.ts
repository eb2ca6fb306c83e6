/**
 * Finding plugins: every folder in each plugin dir, checked (src/plugins/checks.ts: the dir's
 * parents up to `/`, then each folder's whole tree), with its package.json read and its
 * `ferry.api` range compared with ours. Nothing here runs plugin code.
 */
import { lstat, readdir, readFile, realpath } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import sjson from "secure-json-parse";
import { apiCompatible, PLUGIN_API_VERSION } from "./api-range.js";
import { checkParents, checkPluginFile, checkTree, unsafeEntry } from "./checks.js";
import type { FileRules } from "./file-rules.js";

/** A plugin folder that passed every check: its module may be loaded. */
export interface Candidate {
  readonly kind: "candidate";
  readonly folder: string;
  /** The module file to import (real path, inside the folder). */
  readonly module: string;
}

/** A plugin dir or folder that will not be loaded, and why. */
export interface Refusal {
  readonly kind: "refused";
  /** The folder's name: the plugin's own name is in its code, which a refused plugin never runs. */
  readonly name: string;
  readonly path: string;
  readonly reason: string;
}

export type Found = Candidate | Refusal;

const MAX_PACKAGE_JSON_BYTES = 64 * 1024;

const refusal = (path: string, reason: string): Refusal => ({
  kind: "refused",
  name: basename(path),
  path,
  reason,
});

/**
 * Every plugin folder in `dirs` (resolved against the working directory, then to their real
 * paths), in name order. A dir that does not exist is reported through `missing` and skipped.
 */
export async function discoverPlugins(
  dirs: readonly string[],
  missing: (dir: string) => void,
  rules: FileRules,
): Promise<Found[]> {
  const found: Found[] = [];
  for (const given of dirs.map((d) => resolve(d))) {
    let dir: string;
    let entries: string[];
    try {
      // Checked and loaded by its real path: a symlink on the way cannot be swapped afterwards.
      dir = await realpath(given);
      entries = (await readdir(dir)).sort();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") missing(given);
      else found.push(refusal(given, `cannot read plugin dir ${given}: ${code ?? "error"}`));
      continue;
    }
    const dirReason = await checkParents(dir, rules);
    if (dirReason !== undefined) {
      found.push(refusal(dir, dirReason));
      continue;
    }
    for (const entry of entries) {
      if (entry.startsWith(".")) continue;
      found.push(await examineFolder(join(dir, entry), rules));
    }
  }
  return found;
}

/**
 * One plugin folder (inside a plugin dir that passed its checks): the folder and everything in
 * it, its package.json, the api range, and its module file.
 */
export async function examineFolder(folder: string, rules: FileRules): Promise<Found> {
  const stat = await lstat(folder);
  if (stat.isSymbolicLink())
    return refusal(folder, `${folder} is a symlink: plugin folders must be real folders`);
  if (!stat.isDirectory()) return refusal(folder, `${folder} is not a folder`);
  const folderReason = (await unsafeEntry(folder, rules)) ?? (await checkTree(folder, rules));
  if (folderReason !== undefined) return refusal(folder, folderReason);

  const packageFile = await checkPluginFile(folder, "package.json", rules);
  if (!packageFile.ok) return refusal(folder, packageFile.reason);
  let manifest: unknown;
  try {
    const text = await readFile(packageFile.path, "utf8");
    if (text.length > MAX_PACKAGE_JSON_BYTES) return refusal(folder, "package.json is larger than 64 KiB");
    manifest = sjson.parse(text, undefined, { protoAction: "error", constructorAction: "error" });
  } catch (error) {
    return refusal(folder, `package.json is not valid JSON: ${(error as Error).message}`);
  }
  const pkg = (manifest ?? {}) as { ferry?: { api?: unknown }; main?: unknown };
  const api = typeof pkg.ferry === "object" && pkg.ferry !== null ? pkg.ferry.api : undefined;
  if (api === undefined) return refusal(folder, 'package.json has no "ferry": { "api": "^1" }');
  if (!apiCompatible(api))
    return refusal(
      folder,
      `it needs plugin API ${JSON.stringify(api)}, this daemon offers ${PLUGIN_API_VERSION}`,
    );

  const choices = typeof pkg.main === "string" ? [pkg.main] : ["index.js", "index.mjs"];
  if (pkg.main !== undefined && typeof pkg.main !== "string")
    return refusal(folder, 'package.json "main" must be a string');
  for (const choice of choices) {
    const file = await checkPluginFile(folder, choice, rules);
    if (file.ok) return { kind: "candidate", folder, module: file.path };
    // A missing default is fine while another may exist; any other refusal stands.
    if (!file.reason.startsWith("cannot read") || typeof pkg.main === "string")
      return refusal(folder, file.reason);
  }
  return refusal(folder, "no module: package.json names no main, and there is no index.js or index.mjs");
}
