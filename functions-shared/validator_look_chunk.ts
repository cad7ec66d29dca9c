/**
 * A look's chunk (validator_looks.ts): the keys the validator read again, consistently
 * (point_reads.ts), mapped to their expected rows and encoded at once, then staged in
 * Postgres with the run's progress, in one transaction (docs/sync-semantics.md,
 * "Verification").
 *
 * @module
 */

import { encodeJson } from "./dynamo_encoder.ts";
import type { TableSpec } from "./table_registry.ts";
import { onMeter, type ValidatorDeps } from "./validator_deps.ts";
import {
  expectedPage,
  type Item,
  type RowKey,
  rowKeyText,
  type Unmappable,
  unmappableRowKey,
} from "./validator_plan.ts";

/** What a look found for some keys: their expected rows' JSON (an array's elements), unmappable items. */
export interface LookChunk {
  keys: RowKey[];
  /** Each key's expected rows, as the elements of a JSON array (none for a key with none). */
  rows: string[];
  unmappable: Unmappable[];
  /** The length of `rows`' text. */
  bytes: number;
  /** On DynamoDB's clock: the first read began no earlier than `readFrom`. */
  readFrom?: Date;
  /**
   * On DynamoDB's clock: every read ended before `readBefore`; null once a read's answer
   * had no `Date` (no bound known).
   */
  readBefore?: Date | null;
}

/** An empty chunk. */
export const emptyChunk = (): LookChunk => ({ keys: [], rows: [], unmappable: [], bytes: 0 });

/** Notes in `chunk` the bounds of a read of it: `readAt` (before it) and `readBefore` (after). */
export function noteRead(chunk: LookChunk, readAt: Date, readBefore: Date | undefined) {
  if (chunk.readFrom === undefined || readAt < chunk.readFrom) chunk.readFrom = readAt;
  if (readBefore === undefined) chunk.readBefore = null;
  else if (chunk.readBefore === undefined || (chunk.readBefore && readBefore > chunk.readBefore)) {
    chunk.readBefore = readBefore;
  }
}

/**
 * Adds a key read again to a look's chunk: its items mapped to their expected rows and
 * encoded at once, measured on the isolate's meter, so that a chunk holds text, not the
 * SDK's items (a key's items may be 400 KB each, or a collapsed key's many).
 */
export function addToChunk(
  deps: ValidatorDeps,
  spec: TableSpec,
  chunk: LookChunk,
  key: RowKey,
  items: Item[],
) {
  const { rows, unmappable } = onMeter(deps, () => expectedPage(spec, items, new Date()));
  chunk.keys.push(key);
  chunk.unmappable.push(...unmappable);
  if (rows.length > 0) {
    const text = onMeter(deps, () => encodeJson(rows).slice(1, -1));
    chunk.rows.push(text);
    chunk.bytes += text.length;
  }
}

/**
 * Stages the expected rows of a look's point reads, marking the run's progress, in one
 * transaction. The reads are consistent, so what they find unmappable replaces what the
 * Scan's pages found for their keys: an item unmappable now is listed (the table is no
 * match over it, even when it makes no row and the target has none), and one a stale
 * page showed unmappable but that maps now is no longer listed. The run's unmappable list
 * is read and written once per chunk of keys (up to MAX_KEYS_READ entries,
 * validator_compare.ts): once per key, a look at 200 keys beside thousands of unmappable
 * items parsed and wrote the list 200 times, seconds of CPU. The transaction is held by
 * `look.worker` (`sync.hold_validation`, which renews its lease) and moves the look's
 * checkpoint from `look.from` past these keys.
 */
export async function stage(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  chunk: LookChunk,
  look: { worker: string; from: number },
) {
  const looked = new Set(chunk.keys.map(rowKeyText));
  const ofLookedKey = (u: Unmappable) => {
    const rowKey = unmappableRowKey(spec, u);
    return rowKey !== null && looked.has(rowKeyText(rowKey));
  };
  await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${look.worker})`;
    if (chunk.rows.length > 0) {
      const json = `[${chunk.rows.join(",")}]`;
      await tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`;
    }
    const [row] = await tx<{ unmappable: Unmappable[]; recheck_read: number }[]>`
      select unmappable, recheck_read from public.sync_checksums where id = ${run} for update`;
    if (row.recheck_read !== look.from) {
      throw new Error(
        `validation run ${run} of ${spec.targetTable}: its look has ${row.recheck_read} keys read again, not ${look.from} as this request found`,
      );
    }
    const listed = onMeter(
      deps,
      () => JSON.stringify([...row.unmappable.filter((u) => !ofLookedKey(u)), ...chunk.unmappable]),
    );
    // The look's reads' bounds, over all its chunks (validator_looks.ts): an unknown
    // bound (a read without a Date) is infinity, after which nothing is stamped.
    const from = chunk.readFrom?.toISOString() ?? null;
    const before = chunk.readBefore === undefined
      ? null
      : chunk.readBefore === null
      ? "infinity"
      : chunk.readBefore.toISOString();
    await tx`update public.sync_checksums
             set progress_at = now(), unmappable = ${listed}::text::jsonb,
                 recheck_read = ${look.from + chunk.keys.length},
                 recheck_read_from = least(recheck_read_from, ${from}::timestamptz),
                 recheck_read_before = greatest(recheck_read_before, ${before}::timestamptz)
             where id = ${run}`;
  });
}
