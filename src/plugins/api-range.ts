/**
 * Which `ferry.api` ranges a plugin may ask for. Hand-written on purpose (no semver dependency):
 * only ranges inside major 1 up to our own minor are accepted, every other text is refused.
 */

/** The plugin API this daemon offers. */
export const PLUGIN_API_VERSION = "1.0.0";

const [OUR_MAJOR, OUR_MINOR] = PLUGIN_API_VERSION.split(".").map(Number) as [number, number];

/**
 * True when `range` is one of `^1`, `1`, `1.x`, `^1.N` (N at most our minor), with our major.
 * Anything else (`^2`, `>=1`, `*`, `1.0.0 - 2`, not a string) is incompatible.
 */
export function apiCompatible(range: unknown): boolean {
  if (typeof range !== "string") return false;
  const text = range.trim();
  const match = /^(\^?)(\d{1,9})(?:\.(x|\d{1,9}))?$/.exec(text);
  if (match === null) return false;
  const [, caret, majorText, minorText] = match;
  if (Number(majorText) !== OUR_MAJOR) return false;
  if (minorText === undefined || minorText === "x") return true;
  // "1.2" without a caret would mean any 1.2.x: fine only when it is ours.
  const minor = Number(minorText);
  return caret === "^" ? minor <= OUR_MINOR : minor === OUR_MINOR;
}
