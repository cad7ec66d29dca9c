/**
 * The validator's comparison (docs/sync-semantics.md, "Verification"):
 * `sync.compare_checksum_range`, slice by slice of keys, and what
 * a run has found so far. The further looks at keys that differ are in
 * validator_looks.ts. Each step is checkpointed in the run's row, so a request whose
 * budget is spent hands on between steps.
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import type { TableSpec } from "./table_registry.ts";
import { type RowKey, rowKeyText, type Unmappable } from "./validator_plan.ts";

/** A key that differs, and how. */
export type Divergence = { kind: "missing" | "unexpected" | "different"; key: RowKey };

/**
 * Compares the run's rows with the target table slice by slice of keys
 * (`sync.compare_checksum_range`: one statement per slice, its divergent keys and counts
 * added to the run and its checkpoint moved, held by `worker`), until the compare is
 * done or the budget is spent. Returns the run's phase after it ("recheck" or "report"),
 * or "budget".
 */
export async function compareSlices(
  deps: ValidatorDeps,
  run: number,
  worker: string,
  overBudget: () => boolean,
): Promise<string> {
  while (true) {
    if (overBudget()) return "budget";
    const [{ phase }] = await deps.sql<{ phase: string }[]>`
      select sync.compare_checksum_range(${run}, ${worker}) as phase`;
    if (phase !== "compare") return phase;
  }
}

/**
 * How many entries of each list (keys of each kind, unmappable items) a request reads of
 * a run, and its answer lists: a table a hundred times the report's, emptied or mapped
 * wrong, diverges by millions of keys, which would pass the isolate's 256 MB. The run's
 * row keeps every one.
 */
export const MAX_KEYS_READ = 10_000;

/** A run's findings as a request reads them: the first of each list, and the counts. */
export interface Findings {
  /** The first `limit` keys of each kind (all of them when no list holds more). */
  keys: Divergence[];
  /** The first `limit` unmappable items. */
  unmappable: Unmappable[];
  /** How many entries each list holds. */
  counts: Record<Divergence["kind"] | "unmappable", number>;
  /** The divergent keys: the sum of the three kinds' counts. */
  total: number;
}

/**
 * What a run has found so far: at most `limit` entries of each list
 * (`sync.validation_findings`), with every list's count.
 */
export async function findingsOf(
  deps: Pick<ValidatorDeps, "sql">,
  run: number,
  limit = MAX_KEYS_READ,
): Promise<Findings> {
  const [row] = await deps.sql<
    {
      missing: RowKey[];
      unexpected: RowKey[];
      different: RowKey[];
      unmappable: Unmappable[];
      missing_count: number;
      unexpected_count: number;
      different_count: number;
      unmappable_count: number;
    }[]
  >`select * from sync.validation_findings(${run}, ${limit})`;
  const counts = {
    missing: row.missing_count,
    unexpected: row.unexpected_count,
    different: row.different_count,
    unmappable: row.unmappable_count,
  };
  return {
    keys: [
      ...row.missing.map((key) => ({ kind: "missing" as const, key })),
      ...row.unexpected.map((key) => ({ kind: "unexpected" as const, key })),
      ...row.different.map((key) => ({ kind: "different" as const, key })),
    ],
    unmappable: row.unmappable,
    counts,
    total: counts.missing + counts.unexpected + counts.different,
  };
}

/**
 * The looked keys (or some of them) compared with the target (`sync.compare_checksum`
 * restricted to them, against what the look staged): those that differ, and how.
 */
export async function compareLooked(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  keys: RowKey[],
): Promise<Divergence[]> {
  const rows = await deps.sql<{ kind: Divergence["kind"] | null; row_key: RowKey | null }[]>`
    select kind, row_key from sync.compare_checksum(${run}, ${spec.targetTable}, 256, 0, null,
                                                    ${JSON.stringify(keys)}::text::jsonb)`;
  // A set of the keys' texts: comparing every row with every key was quadratic, 2.2 s of
  // CPU for 1,000 rows among 5,000 keys, past the isolate's limit.
  const texts = new Set(keys.map(rowKeyText));
  return rows
    .filter((r) => r.kind !== null && texts.has(rowKeyText(r.row_key!)))
    .map((r) => ({ kind: r.kind!, key: r.row_key! }));
}
