/**
 * The validator's last look, for the keys that still differ after its compares: those
 * the stream changed after the look read them are left out (docs/sync-semantics.md,
 * "Verification"; `sync.keys_changed_since`, 20261128005100_keys_moved_on.sql; for a
 * collapsed table `sync.collapsed_keys_changed_since`,
 * 20261128005400_collapsed_keys_moved_on.sql: its row written from the stream after the
 * read, from an item ranked at least as the largest the look read of the key).
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import type { TableSpec } from "./table_registry.ts";
import { compareLooked, type Divergence } from "./validator_compare.ts";
import { type RowKey, rowKeyText } from "./validator_plan.ts";
import { realPacing } from "./scan_pacing.ts";

/**
 * How many settle pauses the last look waits, at most, for the stream to show a change
 * made after its reads to the keys that still differ: such a change is stamped a second
 * or more after them (the stream's time is floored to the second, as the reads' bound is)
 * and reaches the target after the stream's lag. Only a key the stream is changing waits
 * (one stamped since the reads began); one it changes no more waits them all (5 s at the
 * default settle pause), then is reported. A key left behind by a lost change, untouched
 * since, is reported at once.
 */
export const MOVED_ON_PAUSES = 5;

/**
 * The keys that still differ after the last look's compares, but those
 * whose row or tombstone a stream record changed after they were read
 * (`sync.keys_changed_since`: stamped at or after `readBefore`, an instant after every
 * read of the look, plus the stream clock's granularity). Such a key changes faster than
 * the stream's lag varies, so its row never shows the version read; but the row holds the
 * whole item, from the stream's new image, as changed after the read, so a change lost
 * before it would no longer show either. It is not reported. Asks after each settle
 * pause, up to {@link MOVED_ON_PAUSES} (fewer when the request's budget runs out),
 * comparing once more before.
 */
export async function withoutKeysMovedOn(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  still: Divergence[],
  reads: { readFrom: Date; readBefore: Date },
  overBudget: () => boolean,
): Promise<Divergence[]> {
  const changedSince = async (keys: Divergence[], since: Date) => {
    const json = JSON.stringify(keys.map((d) => d.key));
    const found = spec.collapse
      ? await deps.sql<{ row_key: RowKey }[]>`
      select k as row_key from sync.collapsed_keys_changed_since(${run}, ${spec.targetTable},
        ${json}::text::jsonb, ${since.toISOString()}) k`
      : await deps.sql<{ row_key: RowKey }[]>`
      select k as row_key from sync.keys_changed_since(${spec.targetTable},
        ${json}::text::jsonb, ${since.toISOString()}) k`;
    return new Set(found.map((m) => rowKeyText(m.row_key)));
  };
  // Only a key the stream is changing is waited for: one stamped since about when the
  // reads began (their start less two seconds, the granularity added by the function).
  // A key left behind by a lost change has a row no stream record touches any more: it
  // is reported at once, with no pause.
  const moving = await changedSince(still, new Date(reads.readFrom.getTime() - 2_000));
  const settled = still.filter((d) => !moving.has(rowKeyText(d.key)));
  let left = still.filter((d) => moving.has(rowKeyText(d.key)));
  let movedOn = 0;
  for (let pause = 0; pause < MOVED_ON_PAUSES && left.length > 0; pause++) {
    // A request near its budget (its wall clock, with long settle pauses) reports the
    // keys left rather than hand the look on to do its compares and pauses again.
    if (overBudget()) break;
    await deps.sql`select sync.renew_validation(${run}, ${worker})`;
    await (deps.pause ?? realPacing.sleep)(deps.settleMs ?? 1_000);
    left = await compareLooked(deps, spec, run, left.map((d) => d.key));
    if (left.length === 0) break;
    const moved = await changedSince(left, reads.readBefore);
    movedOn += left.filter((d) => moved.has(rowKeyText(d.key))).length;
    left = left.filter((d) => !moved.has(rowKeyText(d.key)));
  }
  if (movedOn > 0) {
    deps.log?.(
      `validation run ${run} of ${spec.targetTable}: ${movedOn} of the keys that still ` +
        "differ were changed by the stream after they were read again (they change faster " +
        "than the stream lags): not reported",
    );
  }
  return [...settled, ...left];
}
