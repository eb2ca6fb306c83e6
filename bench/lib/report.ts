/** Ratios against the raw engine loop and the peers, and the issue's target, per scenario. */
import type { StoreSet } from "../drivers/index.js";
import type { Figure, Figures, Scenario } from "../scenarios/scenario.js";
import { round } from "./time.js";

export type DriverOutcome = Figures | { readonly error: string };

export interface ScenarioReport {
  readonly headline: Scenario["headline"] & { readonly ratio: string };
  readonly params: Figures;
  readonly results: Readonly<Record<string, DriverOutcome>>;
  readonly ratios: Readonly<Record<string, number | null>>;
  readonly target: { readonly rule: string; readonly met: boolean | null };
}

/** Short names in ratio keys: "ferry_vs_raw", "ferry_vs_bullmq". */
function alias(set: StoreSet, driver: string): string {
  if (driver === set.subject) return "ferry";
  if (driver === set.raw) return "raw";
  return driver.replaceAll("-", "_");
}

function headlineOf(outcome: DriverOutcome | undefined, metric: string): number | null {
  const value: Figure | undefined = outcome && !("error" in outcome) ? outcome[metric] : undefined;
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function report(
  scenario: Scenario,
  set: StoreSet,
  results: Readonly<Record<string, DriverOutcome>>,
): ScenarioReport {
  const { metric, better } = scenario.headline;
  const subject = headlineOf(results[set.subject], metric);
  const ratios: Record<string, number | null> = {};
  for (const other of [set.raw, ...set.peers]) {
    if (!(other in results)) continue;
    const value = headlineOf(results[other], metric);
    ratios[`ferry_vs_${alias(set, other)}`] = subject !== null && value ? round(subject / value) : null;
  }
  const target = set.targets?.[scenario.id] ?? scenario.target;
  let rule: string;
  let met: boolean | null;
  if (target.kind === "min_ratio_vs_raw") {
    rule = `ferry_vs_raw >= ${target.value}`;
    const ratio = ratios.ferry_vs_raw;
    met = ratio === null || ratio === undefined ? null : ratio >= target.value;
  } else if (target.kind === "none") {
    rule = "no target for this store";
    met = null;
  } else if (target.kind === "max_ratio_vs_raw") {
    const peers = target.belowPeers ?? [];
    rule = `ferry_vs_raw <= ${target.value}${peers.map((p) => ` and ferry < ${p}`).join("")}`;
    const ratio = ratios.ferry_vs_raw;
    const peerValues = peers.map((p) => headlineOf(results[p], metric));
    met =
      ratio === null || ratio === undefined || subject === null
        ? null
        : ratio <= target.value && peerValues.every((v) => v === null || subject < v);
  } else {
    rule = `ferry ${metric} <= ${target.value}`;
    met = subject === null ? null : subject <= target.value;
  }
  return {
    headline: { metric, better, ratio: `ferry's ${metric} / the other's (${better} is better)` },
    params: scenario.params,
    results,
    ratios,
    target: { rule, met },
  };
}
