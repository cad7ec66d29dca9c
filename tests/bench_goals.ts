/**
 * The goals of `npm run bench` (issue "Close to the limit", README "Benchmarks"): each
 * path's figure against its raw limit measured in the same run, the ratio, the goal,
 * and whether it is met, printed at the end as one table (the README's is copied from
 * it).
 *
 * A goal is either a ceiling on "time ÷ raw time" (the path may cost at most that many
 * times its raw limit) or a floor on "rate ÷ other rate" (collapsed tables against plain
 * ones); a figure with no raw limit to divide by (the live path's latency) is given with
 * its unit instead. A goal may also give the floor under its path, measured in the same
 * run: what no implementation of the path can go below on this machine (the webhook's: a
 * post refused at its signature check, then the bare upsert), as a ratio to the raw limit.
 *
 * @module
 */

/** Writes one figure of a section as a `name: value` line (tests/bench.ts). */
export type Figure = (name: string, value: number, digits?: number) => void;

/** One path measured against its limit. */
export interface Goal {
  /** What was measured, e.g. "webhook, batches of 10". */
  path: string;
  /** The path's figure and the raw limit's, with their unit, e.g. "915 changes/s". */
  now: string;
  raw: string;
  ratio: number;
  /** The unit of `ratio` and `target` when they are not a ratio (e.g. "ms"). */
  unit?: string;
  /**
   * The floor under the path, same run, as a ratio to the raw limit (`ratio`'s unit), and
   * what it is made of.
   */
  floor?: { ratio: number; what: string };
  /** `max`: the ratio may be at most `target`; `min`: at least. */
  kind: "max" | "min";
  target: number;
}

/** Whether a goal is met. */
export function met(goal: Goal): boolean {
  return goal.kind === "max" ? goal.ratio <= goal.target : goal.ratio >= goal.target;
}

/** The goals of one bench run, in the order they were measured. */
export class Goals {
  readonly all: Goal[] = [];

  /** Records a goal. */
  add(goal: Goal): void {
    this.all.push(goal);
  }

  /** The table, as Markdown. */
  table(): string {
    const lines = [
      "| path | now | raw limit, same run | ratio | goal | met | floor, same run |",
      "| --- | ---: | ---: | ---: | ---: | :---: | --- |",
    ];
    for (const goal of this.all) {
      const unit = goal.unit ? ` ${goal.unit}` : "";
      const target = `${goal.kind === "max" ? "≤" : "≥"} ${goal.target}${unit}`;
      const ratio = goal.unit ? `${formatted(goal.ratio)}${unit}` : `${goal.ratio.toFixed(2)}×`;
      const floor = goal.floor ? `${goal.floor.ratio.toFixed(2)}× (${goal.floor.what})` : "—";
      lines.push(
        `| ${goal.path} | ${goal.now} | ${goal.raw} | ${ratio} | ${target} | ${
          met(goal) ? "yes" : "no"
        } | ${floor} |`,
      );
    }
    return lines.join("\n");
  }
}

/** A number with thousands separators and `digits` decimals. */
export function formatted(value: number, digits = 0): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}
