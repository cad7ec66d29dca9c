/**
 * The validator's repair (docs/sync-semantics.md, "Verification"): the divergent keys
 * read consistently after the divergence was seen, and re-applied through the one merge
 * as `source: "repair"` changes carrying `seenAt` (see validator_plan.ts).
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import { STATEMENT_CPU_MS } from "./cpu_meter.ts";
import type { TableChange } from "./record_mapping.ts";
import { applyChanges } from "./sync_db.ts";
import { logDeadLetters } from "./dead_letter_writer.ts";
import type { TableSpec } from "./table_registry.ts";
import type { Divergence } from "./validator_compare.ts";
import { repairPlan, type RowKey, rowKeyText, type Unmappable } from "./validator_plan.ts";
import { MAX_POINT_READ_PAGES, PartitionTooLarge, pointReadAt } from "./point_reads.ts";
import { leaseRenewal, lookPace } from "./validator_look_reads.ts";

/** A repair applies what it has read once its items' JSON reaches this size. */
export const REPAIR_APPLY_BYTES = 4 * 1024 * 1024;

/**
 * A repair whose reads outlast the request's CPU or wall budget: the `done` keys it read
 * (one at least) are applied; the caller records them and hands the rest on.
 */
export class RepairOverBudget extends Error {
  constructor(readonly table: string, readonly done: number, readonly total: number) {
    super(
      `${table}: read again ${done} of ${total} divergent keys before the request's CPU or ` +
        "wall budget ran out",
    );
    this.name = "RepairOverBudget";
  }
}

/**
 * Which of `keys` (row keys of `table`) hold an admin's edit still on its way to
 * DynamoDB: a pending row of `sync.write_backs` (docs/sync-semantics.md, "Admin edits").
 * Such a row differs from its item until the write-back lands and streams back; a repair
 * would put the item's old values over the edit meanwhile, and the admin would see it
 * undone. The write-back ends it either way: applied (the change streams back), or a
 * conflict or failure, which restores the row from the source itself.
 */
export async function keysAwaitingWriteBack(
  sql: ValidatorDeps["sql"],
  table: string,
  keys: readonly RowKey[],
): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await sql<{ row_key: RowKey }[]>`
    select distinct row_key from sync.write_backs
    where target_table = ${table} and status = 'pending'
      and row_key in (select jsonb_array_elements(${JSON.stringify(keys)}::text::jsonb))`;
  return new Set(rows.map((r) => rowKeyText(r.row_key)));
}

/**
 * Re-applies the source state of exactly `divergent` keys through the normal merge:
 * each key read consistently (after `seenAt`, when the divergence was seen) and turned
 * into repair changes by {@link repairPlan}. Keys with an item that cannot be mapped are
 * left alone and returned. With `removeUnread: false`, a collapsed key's observations
 * that the read did not return are left to their own stream records, and an item that
 * cannot be mapped keeps back only itself (a re-read that only brings back purged items,
 * collapsed_rereads.ts).
 */
export async function repairKeys(
  deps: ValidatorDeps,
  spec: TableSpec,
  divergent: Divergence[],
  seenAt: string,
  { removeUnread = true, spent, leave, renew }: {
    removeUnread?: boolean;
    /**
     * Keys (by `rowKeyText`) passed over unread, as if repaired: those awaiting their
     * write-back ({@link keysAwaitingWriteBack}).
     */
    leave?: ReadonlySet<string>;
    /**
     * Whether the request's CPU or wall budget is spent, asked before each key after the
     * first: then what was read is applied and {@link RepairOverBudget} thrown.
     */
    spent?: () => boolean;
    /**
     * Renews the lease the repair runs under (a validation run's), every
     * `RENEW_EVERY_MS` of its reads and through a long wait for the read budget.
     */
    renew?: () => Promise<void>;
  } = {},
): Promise<Unmappable[]> {
  let changes: TableChange[] = [];
  let bytes = 0;
  const skipped: Unmappable[] = [];
  // Applied a few keys at a time, once their items pass REPAIR_APPLY_BYTES: 200 keys of
  // up to 8 MB partitions held together until the end would pass the isolate's memory.
  // Each key's changes go whole into one transaction; a repair read again after a kill
  // applies them again, which the merge makes a no-op.
  const apply = async () => {
    if (changes.length === 0) return;
    const { refused } = await deps.sql.begin((tx) => applyChanges(tx, changes));
    logDeadLetters(
      refused.map((r) => r.deadLetter),
      (l) => `dead letter: ${l.reason}`,
      deps.log ?? console.warn,
    );
    changes = [];
    bytes = 0;
  };
  // The first key whose partition is too large to read whole: the others are repaired,
  // then it is thrown, for the caller to heal the table by a backfill.
  let tooLarge: PartitionTooLarge | undefined;
  // The tables are the applications': the reads keep to the table's read budget
  // (`maxRcuPerSecond`, when set), as the looks' do, and hold the run's lease meanwhile.
  // Unpaced, a repair of 200 keys of a collapsed table read up to 8 MB each in a burst of
  // hundreds of thousands of read units, and a repair that outlasted the 60 s lease was
  // taken over and read again from its first key (found by a review).
  const pace = lookPace(deps, renew ?? (() => Promise.resolve()));
  const lease = renew && leaseRenewal(renew);
  for (const [done, { key }] of divergent.entries()) {
    if (done > 0 && spent?.()) {
      await apply();
      // A too-large key passed over: the backfill it calls for heals the rest too.
      throw tooLarge ?? new RepairOverBudget(spec.targetTable, done, divergent.length);
    }
    if (leave?.has(rowKeyText(key))) continue;
    await lease?.due();
    // Stamped on DynamoDB's clock, no later than the read (read_stamp.ts): a repair's
    // changes win over the row, and a stream change after the read must still win over them.
    let read;
    try {
      read = await pointReadAt(deps, spec, key, { maxPages: MAX_POINT_READ_PAGES });
    } catch (error) {
      if (!(error instanceof PartitionTooLarge)) {
        // Named where it failed, the error kept as it is (its kind decides whether the
        // caller tries again): the table, the key and the cause. The keys read before it
        // are applied and counted (`repairedBefore`), so that the run's next request goes
        // on from this key, not from the first: under a throttle that lasts, it read the
        // same keys again and failed at the same one until the run was reaped.
        (error as Error).message = `reading key ${JSON.stringify(key)} of ` +
          `${spec.targetTable} to repair it: ${(error as Error).message}`;
        if (!tooLarge && done > 0) {
          await apply();
          Object.assign(error as Error, { repairedBefore: done });
        }
        throw error;
      }
      tooLarge ??= error;
      continue;
    }
    const { items, readAt } = read;
    if (spec.collapse && removeUnread) deps.cpu?.charge(STATEMENT_CPU_MS);
    const known = spec.collapse && removeUnread
      ? (await deps.sql<{ range_key: string }[]>`
          select range_key::text from sync.observations
          where target_table = ${spec.targetTable}
            and row_key = ${JSON.stringify(key)}::text::jsonb and not deleted
          union
          select sync_range_key::text from ${deps.sql(spec.targetTable)}
          where ${deps.sql(spec.targetKey[0])} = ${key[spec.targetKey[0]]}
            and sync_range_key is not null`).map((r) => r.range_key)
      : [];
    // Without removals each item stands alone: one that cannot be mapped keeps back only
    // itself (with removals, it keeps the key back whole: nothing is deleted over it).
    // Mapped as a measured step of the isolate's CPU (cpu_meter.ts): a key's partition
    // may be megabytes, and a hosted isolate's meter sees only what is measured.
    const step = () => {
      const plans = removeUnread
        ? [repairPlan(spec, key, items, known, readAt, seenAt)]
        : items.map((item) => repairPlan(spec, key, [item], [], readAt, seenAt));
      for (const plan of plans) {
        changes.push(...plan.changes);
        skipped.push(...plan.unmappable);
      }
      bytes += items.reduce((sum, item) => sum + JSON.stringify(item).length, 0);
    };
    if (deps.cpu) deps.cpu.measure(step);
    else step();
    if (bytes >= REPAIR_APPLY_BYTES) await apply();
    await pace(items);
  }
  await apply();
  if (tooLarge) throw tooLarge;
  return skipped;
}
