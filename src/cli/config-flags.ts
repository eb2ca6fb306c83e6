/**
 * Flags that `ferry daemon` and `ferry worker` share, and how they become the top layer of the
 * config (docs/config.md): flags win over the file and the environment.
 */
import type { Command } from "commander";
import { invalidArgument } from "../core/errors.js";

export interface ConfigFlags extends PluginFlags {
  config?: string;
  store?: string;
}

export interface PluginFlags {
  /** False with `--no-plugins`. */
  plugins: boolean;
  pluginDir?: string[];
}

/** `--config`, `--store` and the plugin flags. */
export function addConfigFlags(command: Command): Command {
  return addPluginFlags(
    command
      .option("--config <file>", "TOML config file (docs/config.md)")
      .option("--store <url>", "store URL ([store] url; FERRY_STORE)"),
  );
}

function addPluginFlags(command: Command): Command {
  return command
    .option("--no-plugins", "load no plugins ([plugins] enabled = false)")
    .option(
      "--plugin-dir <dir>",
      "a folder of plugins; repeat for more; replaces [plugins] dirs",
      (dir: string, dirs: string[] | undefined) => [...(dirs ?? []), dir],
    );
}

/** The `[store]` and `[plugins]` layers the flags set, if any. */
export function configLayer(flags: ConfigFlags): Record<string, Record<string, unknown>> {
  return {
    ...(flags.store === undefined ? {} : { store: { url: flags.store } }),
    ...pluginLayer(flags),
  };
}

function pluginLayer(flags: PluginFlags): Record<string, Record<string, unknown>> {
  if (flags.plugins && flags.pluginDir === undefined) return {};
  return {
    plugins: {
      ...(flags.plugins ? {} : { enabled: false }),
      ...(flags.pluginDir === undefined ? {} : { dirs: flags.pluginDir }),
    },
  };
}

/** A flag that must be an integer (`--port 0`); its range is the config schema's to check. */
export function integerFlag(flag: string, value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isInteger(number))
    throw invalidArgument(`${flag} must be a number, got ${JSON.stringify(value)}`);
  return number;
}
