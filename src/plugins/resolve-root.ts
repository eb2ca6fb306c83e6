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
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { FERRY_ENTRIES } from "./ferry-files.js";

export interface ResolveRoot {
  /** The private folder; the plugin's folder is reached as `path + folder`. */
  readonly path: string;
  remove(): void;
}

/** Makes the private folder for the plugin at `folder` (a real path). */
export function createResolveRoot(folder: string): ResolveRoot {
  // mkdtemp in the sticky, root-owned tmp: nobody else can rename or replace what we make in it.
  const path = mkdtempSync(join(tmpdir(), "ferry-plugin-"));
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
