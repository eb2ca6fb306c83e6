#!/usr/bin/env node
/**
 * Import graph check for src/, run by `npm run lint`. Fails (exit 1), printing each finding, on:
 * - an import cycle among src modules (type-only imports count: a cycle of types still ties the
 *   modules' layers together, and a later value import along it breaks module initialisation);
 * - an arrow back up the layers: a folder importing one that ARCHITECTURE.md's table (MAY_IMPORT
 *   below) does not allow it, e.g. src/core anything, or src/store src/api.
 * It reads static `import`/`export ... from` statements and literal dynamic `import("…")`; only
 * relative specifiers name src modules. No dependencies: plain Node, so lint needs no install.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
/** Generated code (buf) imports only itself and libraries; it is left out like biome leaves it out. */
const skipped = [join(src, "gen")];

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (skipped.includes(path)) continue;
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(ts|mts|mjs)$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Comments out, so an import named in a comment is not read as one. Strings are kept. */
function stripComments(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

const importPattern =
  /^[ \t]*(?:import|export)\b[^;"'`]*?\bfrom[ \t]*["']([^"']+)["']|^[ \t]*import[ \t]*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

function specifiers(file) {
  const text = stripComments(readFileSync(file, "utf8"));
  const found = [];
  for (const match of text.matchAll(importPattern)) {
    const spec = match[1] ?? match[2] ?? match[3];
    const line =
      text.slice(0, match.index).split("\n").length + (match[0].match(/^\s*/)[0].split("\n").length - 1);
    found.push({ spec, line });
  }
  return found;
}

/** The src file a relative specifier names (TypeScript's `.js` for `.ts`), or undefined. */
function resolveSpec(from, spec) {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(from), spec);
  const candidates = [
    base,
    base.replace(/\.js$/, ".ts"),
    base.replace(/\.mjs$/, ".mts"),
    `${base}.ts`,
    join(base, "index.ts"),
  ];
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {}
  }
  return undefined;
}

const rel = (path) => relative(root, path).split(sep).join("/");
/** The top folder under src ("core", "store", …), or "" for a file directly in src. */
const area = (path) => {
  const parts = relative(src, path).split(sep);
  return parts.length > 1 ? parts[0] : "";
};

const files = walk(src, []).sort();
const graph = new Map();
const problems = [];

for (const file of files) {
  const edges = [];
  for (const { spec, line } of specifiers(file)) {
    const target = resolveSpec(file, spec);
    if (target === undefined) {
      if (spec.startsWith(".")) problems.push(`${rel(file)}:${line}: cannot resolve "${spec}"`);
      continue;
    }
    if (!target.startsWith(src + sep)) continue;
    edges.push({ target, line });
  }
  graph.set(file, edges);
}

// --- layering ---------------------------------------------------------------------------------
// The table of ARCHITECTURE.md: each folder and the folders it may import (besides itself).
// Arrows point down only; the entry points directly in src/ may import anything.
const MAY_IMPORT = {
  core: [],
  serializers: ["core"],
  store: ["core"],
  scheduler: ["core", "store"],
  worker: ["core", "serializers", "store", "scheduler"],
  api: ["core", "serializers", "store", "scheduler", "worker"],
  auth: ["core", "store"],
  handlers: ["core", "serializers", "worker"],
  plugins: ["core", "worker"],
  gen: [],
  wire: ["core", "gen", "api", "store"],
  client: ["core", "gen", "wire", "api", "store", "worker"],
  daemon: [
    "core",
    "gen",
    "wire",
    "serializers",
    "store",
    "scheduler",
    "worker",
    "api",
    "auth",
    "handlers",
    "plugins",
  ],
  cli: [
    "core",
    "gen",
    "wire",
    "serializers",
    "store",
    "scheduler",
    "worker",
    "api",
    "auth",
    "handlers",
    "plugins",
    "client",
    "daemon",
  ],
};
for (const [file, edges] of graph) {
  const from = area(file);
  if (from === "") continue;
  const may = MAY_IMPORT[from];
  if (may === undefined) {
    problems.push(
      `${rel(file)}: src/${from} is not in the layer table (scripts/check-imports.mjs, ARCHITECTURE.md)`,
    );
    continue;
  }
  for (const { target, line } of edges) {
    const to = area(target);
    if (to !== from && !may.includes(to)) {
      problems.push(`${rel(file)}:${line}: src/${from} may not import ${rel(target)} (src/${to || "."})`);
    }
  }
}

// --- cycles (Tarjan's strongly connected components; each one with more than a module, or a
// module importing itself, is a cycle, printed as one concrete loop through it) -------------
let index = 0;
const stack = [];
const info = new Map();
const components = [];
function connect(node) {
  const entry = { index, low: index, onStack: true };
  info.set(node, entry);
  index += 1;
  stack.push(node);
  for (const { target } of graph.get(node) ?? []) {
    const seen = info.get(target);
    if (seen === undefined) {
      connect(target);
      entry.low = Math.min(entry.low, info.get(target).low);
    } else if (seen.onStack) entry.low = Math.min(entry.low, seen.index);
  }
  if (entry.low === entry.index) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      info.get(member).onStack = false;
      component.push(member);
    } while (member !== node);
    components.push(component);
  }
}
for (const file of files) if (!info.has(file)) connect(file);

/** A shortest loop from `start` back to itself inside one component. */
function loopThrough(start, members) {
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const { target } of graph.get(node) ?? []) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [node];
        for (let at = previous.get(node); at !== undefined; at = previous.get(at)) path.unshift(at);
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}
for (const component of components) {
  const members = new Set(component);
  const selfLoop = (graph.get(component[0]) ?? []).some((e) => e.target === component[0]);
  if (component.length < 2 && !selfLoop) continue;
  const start = [...component].sort()[0];
  problems.push(
    `import cycle (${component.length} modules): ${loopThrough(start, members).map(rel).join(" -> ")}`,
  );
}

// --- cycles between src folders: modules may each be acyclic while their folders lean on each
// other (a plugin module using the daemon's type while the daemon loads plugins) ---------------
const areaEdges = new Map();
for (const [file, edges] of graph) {
  const from = area(file);
  for (const { target, line } of edges) {
    const to = area(target);
    if (to === from) continue;
    const key = `${from}\0${to}`;
    if (!areaEdges.has(key)) areaEdges.set(key, `${rel(file)}:${line} -> ${rel(target)}`);
  }
}
const areas = [...new Set([...graph.keys()].map(area))].sort();
const reaches = (from, to) => {
  const seen = new Set([from]);
  const queue = [from];
  while (queue.length > 0) {
    const at = queue.shift();
    if (at === to) return true;
    for (const next of areas) {
      if (!seen.has(next) && areaEdges.has(`${at}\0${next}`)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
};
for (const [key, example] of areaEdges) {
  const [from, to] = key.split("\0");
  if (reaches(to, from)) {
    problems.push(`folder cycle: src/${from || "."} -> src/${to || "."} (e.g. ${example}) and back`);
  }
}

if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  console.error(`check-imports: ${problems.length} problem(s) in ${files.length} modules`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} modules, no cycles, layers kept`);
