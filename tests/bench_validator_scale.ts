/**
 * `npm run bench -- validator-scale` (not a default section): whether the validator's
 * compare in Postgres grows linearly with the table (README, "The plan past one
 * machine"). Synthetic rows are added to `firespring_actions` (a plain table, whose run
 * is streamed: the final pass for unexpected rows) and `firespring_visitors` (collapsed:
 * its staged rows compared, then the same pass), at `BENCH_SCALE_ROWS` (100,000) and ten
 * times that; at each size a run is made whose Scan has read every key (three
 * observations a visitor), and `sync.compare_checksum_range` is called until the compare
 * ends. Printed: each compare's seconds, statements and slowest statement; the goals:
 * the time per row at the larger size over the smaller's (at most 1.5: linear), and the
 * slowest statement's time likewise (at most 1.5: no statement grows with the table).
 * The compare by ranges of buckets that came before (until round 54) grew on both: its
 * final pass's time per row by 5 from 300,000 to 3 million rows, and every statement of a
 * collapsed table's compare with the table (it read the whole of it). Everything happens
 * in one transaction that is rolled back: the tables are left as they were.
 *
 * @module
 */

import type postgres from "postgres";
import { type Figure, formatted, type Goals } from "./bench_goals.ts";

/** A compare's time, in statements. */
interface Compare {
  seconds: number;
  statements: number;
  slowest: number;
  phase: string;
}

const ACTIONS = "firespring_actions";
const VISITORS = "firespring_visitors";

/** Adds `n` synthetic rows to each table, keys after `from` (`bench-scale-<number>`). */
async function addRows(tx: postgres.TransactionSql, from: number, n: number): Promise<void> {
  await tx`
    insert into public.firespring_actions
      (action_id, action_type, session_id, occurred_at, created_at, action_data,
       sync_changed_at, sync_source)
    select 'bench-scale-' || lpad(g::text, 9, '0'), 'click', 's' || (g % 1000), now(), now(),
           jsonb_build_object('n', g, 'pad', repeat('x', 200)), now(), 'backfill'
    from generate_series(${from + 1}::int, ${from + n}::int) g`;
  // The visitors' sessions are not flattened meanwhile (the trigger's work is the insert's,
  // not the compare's); the transaction is rolled back, the trigger with it.
  await tx`alter table public.firespring_visitors disable trigger visitor_sessions_insert`;
  await tx`
    insert into public.firespring_visitors
      (visitor_id, page_views, last_visit_at, created_at, session_data, sync_range_key,
       sync_changed_at, sync_source)
    select 'bench-scale-' || lpad(g::text, 9, '0'), g % 50, now(), now(),
           jsonb_build_object('sessions', jsonb_build_array(
             jsonb_build_object('id', g, 'pad', repeat('y', 300)))), 1, now(), 'backfill'
    from generate_series(${from + 1}::int, ${from + n}::int) g`;
  await tx`analyze public.firespring_actions`;
  await tx`analyze public.firespring_visitors`;
}

/**
 * A run of `table` in its compare whose Scan read every row the table holds: a streamed
 * run's keys seen, or a staged run's expected rows (the row itself, and two older
 * observations that differ).
 */
async function runThatReadAll(tx: postgres.TransactionSql, table: string): Promise<number> {
  const streamed = table === ACTIONS;
  const [{ id }] = await tx<{ id: number }[]>`
    insert into public.sync_checksums
      (target_table, status, source_items, streamed, phase, lease_owner, lease_expires_at)
    values (${table}, 'running', 0, ${streamed}, 'compare', 'bench', now() + interval '1 day')
    returning id`;
  if (streamed) {
    await tx`
      insert into sync.checksum_seen (run_id, key_hash, row_key)
      select ${id}, hashtext(k::text), k
      from public.firespring_actions t, jsonb_build_object('action_id', t.action_id) k`;
  } else {
    await tx`
      insert into sync.checksum_items (run_id, row_key, range_key, rank, digest)
      select ${id}, jsonb_build_object('visitor_id', v.visitor_id), v.sync_range_key - o, 0,
             case when o = 0 then sync.canonical_digest(to_jsonb(v)) else md5(o::text) end
      from public.firespring_visitors v cross join generate_series(0, 2) o`;
  }
  await tx`analyze sync.checksum_seen`;
  await tx`analyze sync.checksum_items`;
  return id;
}

/** Calls `sync.compare_checksum_range` for run `id` until its compare ends. */
async function compare(tx: postgres.TransactionSql, id: number): Promise<Compare> {
  const result: Compare = { seconds: 0, statements: 0, slowest: 0, phase: "compare" };
  while (result.phase === "compare") {
    const t = performance.now();
    const [{ phase }] = await tx<{ phase: string }[]>`
      select sync.compare_checksum_range(${id}, 'bench') as phase`;
    const seconds = (performance.now() - t) / 1000;
    result.seconds += seconds;
    result.statements++;
    result.slowest = Math.max(result.slowest, seconds);
    result.phase = phase;
  }
  // Ended, as the validator ends a run past its report: a table has one run at a time
  // (sync_checksums_one_active_run), and the section compares each table several times.
  await tx`update public.sync_checksums set status = 'done' where id = ${id}`;
  return result;
}

/** The section: see the module's comment. */
export async function benchValidatorScale(
  sql: postgres.Sql,
  figure: Figure,
  goals: Goals,
): Promise<void> {
  const small = Number(Deno.env.get("BENCH_SCALE_ROWS") ?? 100_000);
  const sizes = [small, small * 10];
  const results = new Map<string, Compare[]>([[ACTIONS, []], [VISITORS, []]]);
  const rows = new Map<string, number[]>([[ACTIONS, []], [VISITORS, []]]);
  try {
    await sql.begin(async (tx) => {
      // A run of either table under way (left by another section) is set aside while this
      // transaction compares its own (a table has one run at a time); the rollback restores it.
      await tx`update public.sync_checksums set status = 'done'
               where status in ('queued', 'running') and target_table in (${ACTIONS}, ${VISITORS})`;
      let added = 0;
      for (const size of sizes) {
        await addRows(tx, added, size - added);
        added = size;
        for (const table of [ACTIONS, VISITORS]) {
          const [{ n }] = await tx.unsafe<{ n: number }[]>(
            `select count(*)::int as n from public.${table}`,
          );
          // The first size is compared once untimed: its first compare would pay the
          // plans' and caches' first use, which the larger size then finds done, and the
          // growth would look smaller than it is.
          if (size === small) await compare(tx, await runThatReadAll(tx, table));
          const result = await compare(tx, await runThatReadAll(tx, table));
          if (result.phase !== "report") {
            throw new Error(`${table}: the compare of ${n} rows ended in ${result.phase}`);
          }
          results.get(table)!.push(result);
          rows.get(table)!.push(n);
          const at = `${table}_${size}`;
          figure(`compare_${at}_seconds`, result.seconds, 2);
          figure(`compare_${at}_statements`, result.statements, 0);
          figure(`compare_${at}_slowest_statement_seconds`, result.slowest, 2);
          console.log(
            `validator-scale: ${table}, ${formatted(n)} rows: ${result.seconds.toFixed(2)} s`,
          );
        }
      }
      // Leaves the tables, the runs and their staging as they were.
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) throw error;
  }
  for (const table of [ACTIONS, VISITORS]) {
    const [smaller, larger] = results.get(table)!;
    const [few, many] = rows.get(table)!;
    const perRow = (c: Compare, n: number) => c.seconds / n;
    const ratio = perRow(larger, many) / perRow(smaller, few);
    figure(`compare_${table}_per_row_growth`, ratio, 2);
    figure(`compare_${table}_slowest_statement_growth`, larger.slowest / smaller.slowest, 2);
    goals.add({
      path: `validator's compare of ${table}, time per row at ${formatted(many)} rows`,
      now: `${(perRow(larger, many) * 1e6).toFixed(1)} µs (${larger.statements} statements, ` +
        `slowest ${larger.slowest.toFixed(2)} s)`,
      raw: `${(perRow(smaller, few) * 1e6).toFixed(1)} µs at ${formatted(few)} rows`,
      ratio,
      kind: "max",
      target: 1.5,
    });
    goals.add({
      path: `validator's compare of ${table}, slowest statement at ${formatted(many)} rows`,
      now: `${larger.slowest.toFixed(2)} s`,
      raw: `${smaller.slowest.toFixed(2)} s at ${formatted(few)} rows`,
      ratio: larger.slowest / smaller.slowest,
      kind: "max",
      target: 1.5,
    });
  }
}

/** Thrown to roll the section's transaction back. */
class Rollback extends Error {}
