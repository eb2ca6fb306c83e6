/** What `ferry plugins` and AdminService.ListPlugins show of each plugin. */
export type PluginState = "loaded" | "refused" | "crashed" | "stopped";

export interface PluginStatus {
  /** The plugin's own name; for a refused plugin, its folder's name. */
  readonly name: string;
  /** Empty when refused before its code ran. */
  readonly version: string;
  readonly path: string;
  /** Full handler names (`acme.greet`). */
  readonly handlers: readonly string[];
  readonly state: PluginState;
  /** Why it was refused, or why its process last ended; empty otherwise. */
  readonly reason: string;
  /** How often its process was started again. */
  readonly restarts: number;
  readonly isolation: "process" | "inline";
}
