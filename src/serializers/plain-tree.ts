import { MAX_DEPTH } from "./limits.js";
import { TAG_KEY } from "./tags.js";

/**
 * The fast path: true when `value` is already plain JSON data — plain objects, arrays, strings,
 * finite numbers, booleans, null — with no `$ferry`, `__proto__` or `constructor` keys, no
 * undefined, no holes, within MAX_DEPTH and visiting at most `maxNodes` values. Such a value needs
 * no conversion either way, so the serializer skips building a converted copy. Anything else
 * (including cycles, which run past the depth limit) answers false and takes the full walk,
 * which reports the precise error. Allocates nothing.
 */
export function isPlainJsonTree(value: unknown, maxNodes: number): boolean {
  let nodes = 0;
  function check(v: unknown, depth: number): boolean {
    if (++nodes > maxNodes) return false;
    switch (typeof v) {
      case "string":
      case "boolean":
        return true;
      case "number":
        return Number.isFinite(v);
      case "object": {
        if (v === null) return true;
        if (depth >= MAX_DEPTH) return false;
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            if (!(i in v) || !check(v[i], depth + 1)) return false;
          }
          return true;
        }
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) return false;
        for (const key in v) {
          if (key === TAG_KEY || key === "__proto__" || key === "constructor") return false;
          if (!Object.hasOwn(v, key)) return false;
          const child = (v as Record<string, unknown>)[key];
          if (child === undefined || !check(child, depth + 1)) return false;
        }
        return true;
      }
      default:
        return false;
    }
  }
  try {
    return check(value, 0);
  } catch {
    // A getter or Proxy trap threw: let the full walk report it.
    return false;
  }
}
