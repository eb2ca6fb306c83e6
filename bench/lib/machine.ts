import { readFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";

const GB = 1024 ** 3;

/** The repo's node_modules, then NODE_PATH (where CommonJS packages such as bullmq also look). */
const MODULE_DIRS = [
  fileURLToPath(new URL("../../node_modules", import.meta.url)),
  ...(process.env.NODE_PATH ?? "").split(delimiter).filter(Boolean),
];

function packageVersion(name: string): string | null {
  for (const dir of MODULE_DIRS) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, name, "package.json"), "utf8")) as {
        version?: string;
      };
      return manifest.version ?? null;
    } catch {
      // not in this directory
    }
  }
  return null;
}

function sqliteVersion(): string {
  const db = new Database(":memory:");
  try {
    return (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  } finally {
    db.close();
  }
}

export function machineInfo(): Record<string, unknown> {
  const cpuList = cpus();
  return {
    cpus: cpuList.length,
    cpu_model: cpuList[0]?.model ?? "unknown",
    total_mem_gb: Math.round((totalmem() / GB) * 10) / 10,
    free_mem_gb: Math.round((freemem() / GB) * 10) / 10,
    loadavg_1m: loadavg()[0] ?? null,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    versions: {
      "better-sqlite3": packageVersion("better-sqlite3"),
      sqlite: sqliteVersion(),
      bullmq: packageVersion("bullmq"),
      ioredis: packageVersion("ioredis"),
    },
  };
}
