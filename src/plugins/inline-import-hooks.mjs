/**
 * The module resolve hook that keeps an inline plugin's imports in its folder (registered in the
 * daemon by inline-import-guard.ts, once per plugin folder). Only imports made from a file inside
 * `folder` are judged: they may resolve to a `node:` built-in, into the folder (its node_modules
 * included) or into Ferry's own code; anything else (a file elsewhere, `data:`) is refused before
 * it is read. Plain JavaScript: Node loads hooks on its own thread, without the daemon's loader.
 */
import { isAbsolute, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

let folder = "";
/** @type {string[]} */
let ferryCode = [];
/** `ferry` and `ferry/plugin` -> the URL of the daemon's own entry module. */
let ferryEntries = {};

export function initialize(data) {
  folder = data.folder;
  ferryCode = data.ferryCode;
  ferryEntries = data.ferryEntries;
}

const inside = (root, path) => {
  const rel = relative(root, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
};

const pathOf = (url) => (url.startsWith("file:") ? fileURLToPath(url) : undefined);

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL === undefined ? undefined : pathOf(context.parentURL);
  const mine = parent !== undefined && inside(folder, parent);
  if (mine && Object.hasOwn(ferryEntries, specifier)) return resolveFerry(specifier, context, nextResolve);
  const resolved = await nextResolve(specifier, context);
  if (!mine) return resolved;
  if (resolved.url.startsWith("node:")) return resolved;
  const target = pathOf(resolved.url);
  if (target !== undefined && (inside(folder, target) || ferryCode.some((root) => inside(root, target))))
    return resolved;
  throw Object.assign(
    new Error(
      `${parent} imports ${specifier} (${resolved.url}), outside its plugin folder: a plugin may import ` +
        "only node: built-ins, ferry and the files in its own folder (its node_modules included)",
    ),
    { code: "FERRY_PERMISSION_DENIED" },
  );
}

/**
 * `ferry` or `ferry/plugin` from a plugin: its own copy when its node_modules holds one (as in a
 * plugin process), else the daemon's own Ferry, wherever the plugin's folder lies.
 */
async function resolveFerry(specifier, context, nextResolve) {
  try {
    const own = await nextResolve(specifier, context);
    const target = pathOf(own.url);
    if (target !== undefined && inside(folder, target)) return own;
  } catch {
    // Not in its folder nor above it: the daemon's own below.
  }
  return nextResolve(ferryEntries[specifier], context);
}
