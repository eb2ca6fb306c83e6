/** Several rounds of one scenario for one driver, reduced to the round that is the median. */
import type { Figures } from "../scenarios/scenario.js";
import type { DriverOutcome } from "./report.js";

/**
 * The outcome whose headline figure is the median of the rounds (the lower middle one for an even
 * count), with every round's figure beside it as `rounds`. One round: that outcome as it is. A
 * failed round counts as failed only when every round failed.
 */
export function medianRound(outcomes: readonly DriverOutcome[], metric: string): DriverOutcome {
  if (outcomes.length === 1) return outcomes[0]!;
  const measured = outcomes.filter(
    (o): o is Figures => !("error" in o) && typeof o[metric] === "number" && Number.isFinite(o[metric]),
  );
  if (measured.length === 0) return outcomes[0]!;
  const sorted = [...measured].sort((a, b) => (a[metric] as number) - (b[metric] as number));
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const figures = outcomes.map((o) => ("error" in o ? "error" : (o[metric] ?? null)));
  return { ...median, rounds: figures.join(" ") };
}
