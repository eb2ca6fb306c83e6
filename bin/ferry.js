#!/usr/bin/env node
// Runs the compiled CLI: no TypeScript at start. `npm ci` (prepare) and `npm test` build dist/.
import { existsSync } from "node:fs";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("ferry: dist/ is missing: run `npm run build` in this checkout\n");
  process.exit(1);
}
await import(main.href);
