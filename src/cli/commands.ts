/**
 * Every command, grouped by the module that defines it, with the names each group answers to. A
 * command line names its command first, so the CLI loads only that group (its protobuf
 * descriptors, the daemon's modules): every import costs start-up time on each call.
 */
import type { Command } from "commander";

export interface CommandGroup {
  /** The top-level command names the group defines (test/unit/cli-commands.test.ts holds it to that). */
  readonly names: readonly string[];
  readonly load: () => Promise<Command[]>;
}

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { names: ["daemon"], load: async () => [(await import("./daemon.js")).daemonCommand()] },
  { names: ["worker"], load: async () => [(await import("./worker.js")).workerCommand()] },
  { names: ["migrate"], load: async () => [(await import("./migrate.js")).migrateCommand()] },
  {
    names: ["launch", "submit", "run"],
    load: async () => (await import("./launch-commands.js")).launchCommands(),
  },
  {
    names: ["status", "wait", "result", "outcome", "cancel", "detach", "retry"],
    load: async () => (await import("./job-commands.js")).jobCommands(),
  },
  { names: ["list"], load: async () => [(await import("./list-command.js")).listCommand()] },
  { names: ["schedule"], load: async () => [(await import("./schedule-commands.js")).scheduleCommand()] },
  {
    names: ["purge", "queue", "workers", "stats"],
    load: async () => (await import("./ops-commands.js")).opsCommands(),
  },
  { names: ["plugins"], load: async () => [(await import("./plugins-command.js")).pluginsCommand()] },
  {
    names: ["token", "grant", "revoke", "users"],
    load: async () => (await import("./access-commands.js")).accessCommands(),
  },
];

/** The commands for `first` (the first argument): its group alone, or all of them for help and typos. */
export async function commandsFor(first: string | undefined): Promise<Command[]> {
  const group = COMMAND_GROUPS.find((g) => first !== undefined && g.names.includes(first));
  if (group !== undefined) return group.load();
  return (await Promise.all(COMMAND_GROUPS.map((g) => g.load()))).flat();
}
