/**
 * The plugin fixtures (test/fixtures/plugins/), copied into a fresh folder with the modes the
 * daemon accepts (folders 0755, files 0644: git may check them out otherwise).
 */
import { chmodSync, cpSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./temp.js";

const fixtures = new URL("../fixtures/plugins/", import.meta.url).pathname;

export const PLUGIN_FIXTURES = ["acme", "crasher", "future", "hanger", "impostor", "leaker", "thrower"];

/** `names` copied under `<temp>/plugins/`; `dir.path` is the temp folder, `plugins` the plugin dir. */
export function copyPlugins(names: readonly string[] = PLUGIN_FIXTURES) {
  const dir = tempDir("ferry-plugins-");
  // A root daemon runs plugins as nobody, who must be able to reach them (mkdtemp makes 0700).
  chmodSync(dir.path, 0o755);
  const plugins = join(dir.path, "plugins");
  mkdirSync(plugins);
  chmodSync(plugins, 0o755);
  for (const name of names) {
    cpSync(join(fixtures, name), join(plugins, name), { recursive: true });
    fixModes(join(plugins, name));
  }
  return { dir, plugins };
}

/** Folders 0755, files 0644, all the way down. */
export function fixModes(path: string): void {
  if (statSync(path).isDirectory()) {
    chmodSync(path, 0o755);
    for (const entry of readdirSync(path)) fixModes(join(path, entry));
  } else {
    chmodSync(path, 0o644);
  }
}
