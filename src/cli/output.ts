/**
 * How the job commands write: `--json` gives one JSON object per line on stdout (for scripts and
 * jq); otherwise aligned columns and `key  value` blocks for people. Errors go to stderr.
 */

/** One JSON value on its own line: the library's answer as it is, its Dates as ISO strings. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A time as RFC 3339 (what the daemon sends), none for null. */
export const time = (date: Date | null): string | undefined =>
  date === null ? undefined : date.toISOString();

/** Rows under a header, each column as wide as its widest cell; nothing at all for no rows. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  if (rows.length === 0) return;
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[header, ...rows].map(line).join("\n")}\n`);
}

/** `key  value` lines, keys aligned; pairs with an undefined value are left out. */
export function printFields(pairs: readonly (readonly [string, string | undefined])[]): void {
  const shown = pairs.filter((pair): pair is readonly [string, string] => pair[1] !== undefined);
  const width = Math.max(...shown.map(([key]) => key.length));
  process.stdout.write(shown.map(([key, value]) => `${key.padEnd(width)}  ${value}\n`).join(""));
}

/** An empty cell shows as "-", so columns stay readable. */
export const cell = (value: string | number | null | undefined): string =>
  value === undefined || value === null || value === "" ? "-" : String(value);

/** A fraction 0..1 as a whole percentage. */
export const percent = (fraction: number): string => `${Math.round(fraction * 100)}%`;

/** Milliseconds as the largest unit that divides them (900000 -> "15m"), as durations are written. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
