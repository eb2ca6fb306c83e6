/** What a scenario is to the runner: its parameters, its headline figure, its target, and a run per driver. */

export type Figure = number | string | boolean | null;
export type Figures = Readonly<Record<string, Figure>>;

/** The targets for Ferry: relative to the raw engine loop, or an absolute bound. */
export type Target =
  | { readonly kind: "min_ratio_vs_raw"; readonly value: number }
  | { readonly kind: "max_absolute"; readonly value: number }
  /** At most `value` times the raw loop's figure, and below each of `belowPeers`. */
  | { readonly kind: "max_ratio_vs_raw"; readonly value: number; readonly belowPeers?: readonly string[] }
  /** Reported, with no target (the issue sets none for this store). */
  | { readonly kind: "none" };

export interface Scenario {
  readonly id: string;
  /** The figure ratios are taken on, and which way is better. */
  readonly headline: { readonly metric: string; readonly better: "higher" | "lower" };
  readonly params: Figures;
  readonly target: Target;
  /** Runs against one driver; a rejection is reported as that driver's error. */
  run(driver: string): Promise<Figures>;
}
