/**
 * Preloaded into a store's thread when Ferry runs from its TypeScript sources (tests, tsx), never
 * from dist/ (tsconfig.build.json leaves this file out): it lets the thread load its `.ts` module.
 * `--import tsx` would not do: on Node 20, tsx registers its hooks on the main thread only.
 */
import { register } from "tsx/esm/api";

register();
