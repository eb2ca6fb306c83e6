/** Ferry on PostgreSQL with the worker's local queue on (prefetch = concurrency): compare with graphile-worker's. */
import type { CreateDriver } from "../driver.js";
import { createPostgresFerryDriver } from "./ferry-postgres.js";

export const createDriver: CreateDriver = () => createPostgresFerryDriver("ferry-postgres-prefetch", 1);
