/** Ferry on NATS with the worker's local queue on (prefetch = concurrency), as raw-nats's consume() buffers. */
import type { CreateDriver } from "../driver.js";
import { createNatsFerryDriver } from "./ferry-nats.js";

export const createDriver: CreateDriver = () => createNatsFerryDriver("ferry-nats-prefetch", 1);
