/**
 * `npm run bench`: the benchmarks, each figure on its own line as `name: value`.
 *
 * Sections (all by default; `npm run bench -- webhook backfill` picks):
 * - webhook (below), live (tests/bench_live.ts), backfill (tests/bench_backfill.ts),
 *   validator (tests/bench_validator.ts).
 * Not by default: export (tests/bench_export.ts) and validator-scale
 * (tests/bench_validator_scale.ts).
 *
 * Webhook throughput: batches of 10, 100 and 1000 DynamoDB Streams records posted to
 * the mmp-toledo-sync webhook (signature check, validation, mapping, one transaction
 * through sync.merge_changes), one batch at a time, against the baseline measured in
 * the same run: the same rows as one raw multi-row `insert ... on conflict do update`
 * per batch, straight into Postgres. After each size both paths' rows are compared (count
 * and md5 of their contents): the section fails unless the webhook wrote what the raw
 * upsert wrote. The backfill and export sections check their work too
 * (tests/bench_checks.ts): a bench whose work was not done fails rather than record a goal.
 *
 * @module
 */

import type postgres from "postgres";
import { up } from "../local-stack/stack.ts";
import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { benchBackfill } from "./bench_backfill.ts";
import { benchExport } from "./bench_export.ts";
import { benchLive } from "./bench_live.ts";
import { formatted, Goals } from "./bench_goals.ts";
import { benchValidator } from "./bench_validator.ts";
import { benchValidatorScale } from "./bench_validator_scale.ts";
import { percentile } from "./bench_edge_cpu.ts";
import { callFunction, connectDb, stack, streamRecord } from "./stack_clients.ts";

const CHANGES_PER_SIZE = Number(Deno.env.get("BENCH_CHANGES") ?? 10_000);
/**
 * The fewest batches a size is timed on: at a batch of 1,000, 10,000 changes were 10
 * batches, and one isolate's retirement among them (a new isolate's first batch, its
 * connection opened, about 90 ms more: every 60 batches or so at that size, when the
 * isolate passes its CPU soft limit) moved the ratio by a fifth: 1.70–2.46× in round 80's
 * whole benches of one tree. At 30 the same retirement weighs a third as much.
 */
const MIN_BATCHES = 30;

/** The changes timed at batches of `size`: {@link CHANGES_PER_SIZE}, or 30 batches' worth. */
function changesAt(size: number): number {
  return Math.max(CHANGES_PER_SIZE, MIN_BATCHES * size);
}

function figure(name: string, value: number, digits = 1): void {
  console.log(`${name}: ${value.toFixed(digits)}`);
}

/** A batch of INSERT records of firespring_actions with realistic attributes. */
export function actionRecords(run: string, batch: number, size: number, seqBase: bigint) {
  return Array.from({ length: size }, (_, i) => {
    const id = `bench-${run}-${size}-${batch}-${i}`;
    return streamRecord(
      "firespring-backdoor-actions-dev",
      "INSERT",
      { action_id: { S: id } },
      {
        action_id: { S: id },
        action_type: { S: "click" },
        session_id: { S: `s-${i % 97}` },
        timestamp: { N: String(1770379200 + i) },
        url: { S: `/page/${i % 50}` },
        title: { S: "A page title" },
        data: { M: { x: { N: String(i) }, tag: { S: "bench" } } },
        created_at: { S: "2026-02-06T12:00:00Z" },
      },
      String(seqBase + BigInt(batch * size + i)).padStart(21, "0"),
    );
  });
}

/** A timed run of batches: its changes, its seconds, each batch's latency. */
interface Timed {
  changes: number;
  seconds: number;
  latencies: number[];
}

async function benchWebhook(run: string, size: number, changes: number): Promise<Timed> {
  const batches = Math.max(1, Math.floor(changes / size));
  // Signed ahead (as the Lambda would sign), so that the figures are the webhook's own.
  const requests = Array.from({ length: batches }, (_, b) => {
    const body = JSON.stringify({ records: actionRecords(run, b, size, 10n ** 18n) });
    return { body, headers: signWebhook(stack.SYNC_WEBHOOK_SECRET, body) };
  });
  const latencies: number[] = [];
  const started = performance.now();
  for (const { body, headers } of requests) {
    const t = performance.now();
    // Sent as signed above: postWebhook would sign again, inside the timed loop.
    const response = await callFunction("mmp-toledo-sync", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });
    const counts = await response.json();
    if (response.status !== 200 || counts.applied !== size) {
      throw new Error(`bench batch refused: ${response.status} ${JSON.stringify(counts)}`);
    }
    latencies.push(performance.now() - t);
  }
  return { seconds: (performance.now() - started) / 1000, changes: batches * size, latencies };
}

async function benchRaw(
  sql: postgres.Sql,
  run: string,
  size: number,
  changes: number,
): Promise<Timed> {
  const batches = Math.max(1, Math.floor(changes / size));
  const rows = Array.from({ length: batches }, (_, b) =>
    Array.from({ length: size }, (_, i) => ({
      action_id: `raw-${run}-${size}-${b}-${i}`,
      action_type: "click",
      session_id: `s-${i % 97}`,
      occurred_at: new Date((1770379200 + i) * 1000),
      created_at: new Date("2026-02-06T12:00:00Z"),
      action_data: { url: `/page/${i % 50}`, title: "A page title", data: { x: i, tag: "bench" } },
      sync_sequence: String(10n ** 18n + BigInt(b * size + i)),
      sync_changed_at: new Date(),
      sync_source: "stream",
    })));
  const latencies: number[] = [];
  const started = performance.now();
  for (const batch of rows) {
    const t = performance.now();
    await sql`insert into public.firespring_actions ${sql(batch)}
              on conflict (action_id) do update set
                action_type = excluded.action_type, session_id = excluded.session_id,
                occurred_at = excluded.occurred_at, created_at = excluded.created_at,
                action_data = excluded.action_data, sync_sequence = excluded.sync_sequence,
                sync_changed_at = excluded.sync_changed_at, sync_source = excluded.sync_source`;
    latencies.push(performance.now() - t);
  }
  return { seconds: (performance.now() - started) / 1000, changes: batches * size, latencies };
}

/**
 * The count and an md5 of the rows one path wrote at batches of `size` in run `run`
 * (`prefix`: `bench` the webhook's, `raw` the raw upsert's; an id is
 * `<prefix>-<run>-<round>-<size>-<batch>-<i>`, and the warm-up's, of round `warm`, are left
 * out): every mapped column of each row, with its id less the path's prefix, the rows
 * ordered by that.
 */
async function writtenRows(sql: postgres.Sql, prefix: "bench" | "raw", run: string, size: number) {
  const [row] = await sql`
    select count(*)::int as rows,
           md5(coalesce(string_agg(
             row(regexp_replace(action_id, '^(bench|raw)-', ''), action_type, session_id,
                 occurred_at, created_at, action_data, sync_sequence, sync_source)::text,
             E'\n' order by regexp_replace(action_id, '^(bench|raw)-', '')), '')) as digest
    from public.firespring_actions where action_id ~ ${`^${prefix}-${run}-[0-9]+-${size}-`}`;
  return row as { rows: number; digest: string };
}

/**
 * Checks the work of both paths at batches of `size`: the raw upsert left its `changes`
 * rows, and the webhook the same rows (the same logical rows under another prefix, the
 * same contents). A webhook that wrote less, or wrote it wrong, was timed as one that
 * did the work.
 */
async function checkSameRows(sql: postgres.Sql, run: string, size: number, changes: number) {
  const hook = await writtenRows(sql, "bench", run, size);
  const raw = await writtenRows(sql, "raw", run, size);
  const where = `bench webhook: public.firespring_actions, batches of ${size}`;
  if (raw.rows !== changes) {
    throw new Error(`${where}: expected ${changes} rows of the raw upsert, found ${raw.rows}`);
  }
  if (hook.rows !== raw.rows || hook.digest !== raw.digest) {
    throw new Error(
      `${where}: expected the webhook's rows to be the raw upsert's (${raw.rows}, md5 ${raw.digest}), found ${hook.rows}, md5 ${hook.digest}`,
    );
  }
}

/** Issue "Close to the limit": the webhook's time per change against the raw upsert's. */
const WEBHOOK_GOALS: Record<number, number> = { 10: 3, 1000: 2 };
/**
 * The webhook and the raw upsert take turns, a fifth of the changes at a time, so that
 * whatever else the machine does meanwhile (this machine's other tenants, a stack just
 * started) weighs on both alike, not on whichever went first. One after the other, at a
 * batch of 1,000: 2.25× and 2.39× in two whole benches on a stack just started, 1.63–1.97×
 * alone on a stack already up; in turns, 2.04× and 1.92× on a stack just started.
 */
const ROUNDS = 5;

/** Both paths at `size`, in {@link ROUNDS} turns each, summed. */
async function benchBoth(sql: postgres.Sql, run: string, size: number) {
  const hook: Timed = { changes: 0, seconds: 0, latencies: [] };
  const raw: Timed = { changes: 0, seconds: 0, latencies: [] };
  const add = (sum: Timed, part: Timed) => {
    sum.changes += part.changes;
    sum.seconds += part.seconds;
    sum.latencies.push(...part.latencies);
  };
  // Fewer turns when the changes make fewer batches: each turn sends at least one.
  const changes = changesAt(size);
  const rounds = Math.max(1, Math.min(ROUNDS, Math.floor(changes / size)));
  for (let round = 0; round < rounds; round++) {
    add(hook, await benchWebhook(`${run}-${round}`, size, changes / rounds));
    add(raw, await benchRaw(sql, `${run}-${round}`, size, changes / rounds));
  }
  return { hook, raw };
}

async function webhookSection(sql: postgres.Sql, goals: Goals): Promise<void> {
  const run = crypto.randomUUID().slice(0, 8);
  console.error(
    `bench: ${CHANGES_PER_SIZE} changes per batch size (at least ${MIN_BATCHES} batches), against ${stack.FUNCTIONS_URL}`,
  );
  try {
    // Warm up both paths (connections, plans, the function's first request).
    await benchWebhook(`${run}-warm`, 10, CHANGES_PER_SIZE);
    await benchRaw(sql, `${run}-warm`, 10, CHANGES_PER_SIZE);
    for (const size of [10, 100, 1000]) {
      const { hook, raw } = await benchBoth(sql, run, size);
      await checkSameRows(sql, run, size, raw.changes);
      const hookRate = hook.changes / hook.seconds;
      const rawRate = raw.changes / raw.seconds;
      figure(`webhook_batch${size}_changes_per_second`, hookRate, 0);
      figure(`webhook_batch${size}_p50_ms`, percentile(hook.latencies, 50));
      figure(`webhook_batch${size}_p99_ms`, percentile(hook.latencies, 99));
      figure(`raw_upsert_batch${size}_changes_per_second`, rawRate, 0);
      figure(`raw_upsert_batch${size}_p99_ms`, percentile(raw.latencies, 99));
      figure(`webhook_batch${size}_time_vs_raw_upsert`, rawRate / hookRate, 2);
      if (WEBHOOK_GOALS[size]) {
        goals.add({
          path: `webhook, signed batches of ${size}, one at a time`,
          now: `${formatted(hookRate)} changes/s`,
          raw: `${formatted(rawRate)} changes/s (bare multi-row upsert)`,
          ratio: rawRate / hookRate,
          kind: "max",
          target: WEBHOOK_GOALS[size],
        });
      }
    }
  } finally {
    await sql`delete from public.firespring_actions where action_id like ${`bench-${run}%`}
              or action_id like ${`raw-${run}%`}`;
  }
}

/** The sections `npm run bench` runs when none is named. */
const DEFAULT_SECTIONS = ["webhook", "live", "backfill", "validator"];
/** Every section `npm run bench --` may name. */
const SECTIONS = [...DEFAULT_SECTIONS, "export", "validator-scale"];

if (import.meta.main) {
  const sections = Deno.args.length > 0 ? Deno.args : DEFAULT_SECTIONS;
  // A name misspelt ran nothing and passed: refused, before the stack is touched.
  const unknown = sections.filter((name) => !SECTIONS.includes(name));
  if (unknown.length > 0) {
    console.error(
      `bench: no section ${unknown.map((n) => JSON.stringify(n)).join(", ")}; ` +
        `the sections are ${SECTIONS.join(", ")}`,
    );
    Deno.exit(2);
  }
  await up();
  const sql = connectDb();
  const goals = new Goals();
  try {
    if (sections.includes("webhook")) await webhookSection(sql, goals);
    if (sections.includes("live")) await benchLive(sql, figure, goals);
    if (sections.includes("backfill")) await benchBackfill(sql, figure, goals);
    if (sections.includes("validator")) await benchValidator(sql, figure, goals);
    // Not by default: at its scale (100×) it loads 4.8 million items.
    if (sections.includes("export")) await benchExport(sql, figure, goals);
    // Not by default: it adds a million rows to two tables (rolled back).
    if (sections.includes("validator-scale")) await benchValidatorScale(sql, figure, goals);
  } finally {
    await sql.end();
  }
  console.log(`\nEach path against its raw limit, same run:\n${goals.table()}`);
}
