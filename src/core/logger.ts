/**
 * The log every part of Ferry writes to: pino's Logger. Named here, at the bottom, so that code the
 * daemon loads (plugins, workers) can take a logger without importing the daemon; the daemon makes
 * the one it hands out (src/daemon/log.ts).
 */
export type { Logger } from "pino";
