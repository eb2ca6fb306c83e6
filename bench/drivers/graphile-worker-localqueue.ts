/** graphile-worker with its local queue (batched job fetching); the driver itself is graphile-worker.ts. */
import type { CreateDriver } from "../driver.js";
import { createGraphileDriver } from "./graphile-worker.js";

export const createDriver: CreateDriver = () => createGraphileDriver({ localQueue: true });
