/**
 * The validator's comparison (docs/sync-semantics.md, "Verification"):
 * `sync.compare_checksum` per bucket of key hashes, and the second and third looks at
 * keys that differ, after a settle pause and with fresh point reads, so that keys merely
 * in flight are not reported.
 *
 * @module
 */

import type { ValidatorDeps } from "./checksum_validator.ts";
import type { TableSpec } from "./table_registry.ts";
import type { RowKey } from "./validator_plan.ts";
import { pointRead, stage } from "./validator_source.ts";

/** A key that differs, and how. */
export type Divergence = { kind: "missing" | "unexpected" | "different"; key: RowKey };

/**
 * Compares a run's staged rows with the target table: the divergent keys, both row
 * counts, and `seenAt`, the database's time of the comparison (when the divergence was
 * seen, after which a repair reads the source).
 */
export async function compare(deps: ValidatorDeps, spec: TableSpec, run: number) {
  const rows = await deps.sql<
    {
      kind: Divergence["kind"] | null;
      row_key: RowKey | null;
      expected_rows: string;
      target_rows: string;
      seen_at: Date;
    }[]
  >`select * from sync.compare_checksum(${run}, ${spec.targetTable})`;
  return {
    divergent: rows.filter((r) => r.kind !== null).map((r) => ({ kind: r.kind!, key: r.row_key! })),
    expectedRows: Number(rows[0].expected_rows),
    targetRows: Number(rows[0].target_rows),
    /** The database's time of the comparison: when the divergence was seen. */
    seenAt: rows[0].seen_at.toISOString(),
  };
}

const sameKey = (a: RowKey, b: RowKey) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Looks again at divergent keys, after a settle pause, with fresh point reads of the
 * source; keeps only the keys that differ every time (up to `looks` times, stopping as
 * soon as none does).
 */
export async function recheck(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  first: Divergence[],
  looks = 3,
) {
  let divergent = first;
  let outcome = { divergent, expectedRows: 0, targetRows: 0, seenAt: new Date().toISOString() };
  for (let look = 0; look < looks && divergent.length > 0; look++) {
    await new Promise((resolve) => setTimeout(resolve, deps.settleMs ?? 1_000));
    const keys = divergent.map((d) => JSON.stringify(d.key));
    await deps.sql`delete from sync.checksum_items
                   where run_id = ${run} and row_key = any(${keys}::text[]::jsonb[])`;
    for (const { key } of divergent) await stage(deps, spec, run, await pointRead(deps, spec, key));
    outcome = await compare(deps, spec, run);
    divergent = outcome.divergent.filter((d) => divergent.some((f) => sameKey(f.key, d.key)));
  }
  return { ...outcome, divergent };
}
