/**
 * The webhook section of `npm run bench` (tests/bench.ts): batches of 10, 100 and 1000
 * DynamoDB Streams records posted to the mmp-toledo-sync webhook (signature check,
 * validation, mapping, one transaction through sync.merge_changes), one batch at a time,
 * against the baseline measured in the same run: the same rows as one raw multi-row
 * `insert ... on conflict do update` per batch, straight into Postgres. After each size
 * both paths' rows are compared (count and md5 of their contents): the section fails
 * unless the webhook wrote what the raw upsert wrote.
 *
 * And the floor under the webhook, in the same turns: the same bodies signed with a
 * secret the function does not hold, each answered 401 once its signature is checked
 * (the gateway, the isolate, the body read and its HMAC: what any signed webhook pays
 * before its first line of work), plus the raw upsert. No webhook that checks its
 * caller and writes the rows can take less than that on this machine. The refused posts
 * spend the same isolates' CPU, so an isolate passes its soft limit and is retired
 * sooner (1.2–1.4 times as often), and the next one's first batch opens its connection:
 * under 1% of the webhook's time at either size, by the isolates' CPU per request.
 *
 * @module
 */

import type postgres from "postgres";
import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { type Figure, formatted, type Goals } from "./bench_goals.ts";
import { percentile } from "./bench_edge_cpu.ts";
import { callFunction, stack, streamRecord } from "./stack_clients.ts";

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

/**
 * A secret of the webhook's form that the function does not hold: a body signed with it
 * is refused 401 once its signature has been checked.
 */
const FOREIGN_SECRET = `whsec_${btoa("a secret the webhook does not hold")}`;

/**
 * Batches of `size` posted one at a time, signed ahead (as the Lambda would sign), so
 * that the figures are the function's own: applied (`refused` false), or, signed with
 * {@link FOREIGN_SECRET}, each answered 401 after its signature check.
 */
async function benchPosts(
  run: string,
  size: number,
  changes: number,
  refused = false,
): Promise<Timed> {
  const batches = Math.max(1, Math.floor(changes / size));
  const secret = refused ? FOREIGN_SECRET : stack.SYNC_WEBHOOK_SECRET;
  const requests = Array.from({ length: batches }, (_, b) => {
    const body = JSON.stringify({ records: actionRecords(run, b, size, 10n ** 18n) });
    return { body, headers: signWebhook(secret, body) };
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
    const answer = await response.json();
    const expected = refused
      ? response.status === 401 && /signature does not match/.test(answer.error)
      : response.status === 200 && answer.applied === size;
    if (!expected) {
      throw new Error(
        `bench batch of ${size} (${
          refused ? "signed with a foreign secret" : "signed"
        }) answered ${response.status} ${JSON.stringify(answer)}`,
      );
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
 * The webhook, the raw upsert and the refused posts take turns, a fifth of the changes at
 * a time, so that whatever else the machine does meanwhile (this machine's other tenants,
 * a stack just started) weighs on all alike, not on whichever went first. One after the other, at a
 * batch of 1,000: 2.25× and 2.39× in two whole benches on a stack just started, 1.63–1.97×
 * alone on a stack already up; in turns, 2.04× and 1.92× on a stack just started.
 */
const ROUNDS = 5;

/** Both paths at `size`, and the refused posts, in {@link ROUNDS} turns each, summed. */
async function benchBoth(sql: postgres.Sql, run: string, size: number) {
  const hook: Timed = { changes: 0, seconds: 0, latencies: [] };
  const raw: Timed = { changes: 0, seconds: 0, latencies: [] };
  const refused: Timed = { changes: 0, seconds: 0, latencies: [] };
  const add = (sum: Timed, part: Timed) => {
    sum.changes += part.changes;
    sum.seconds += part.seconds;
    sum.latencies.push(...part.latencies);
  };
  // Fewer turns when the changes make fewer batches: each turn sends at least one.
  const changes = changesAt(size);
  const rounds = Math.max(1, Math.min(ROUNDS, Math.floor(changes / size)));
  for (let round = 0; round < rounds; round++) {
    // The same bodies for the refused posts (they write nothing), and the three in turn
    // in an order that rotates: an isolate retired after one turn's CPU opens its next
    // connection in whichever comes next, never always the webhook's.
    const turns = [
      async () => add(hook, await benchPosts(`${run}-${round}`, size, changes / rounds)),
      async () => add(raw, await benchRaw(sql, `${run}-${round}`, size, changes / rounds)),
      async () => add(refused, await benchPosts(`${run}-${round}`, size, changes / rounds, true)),
    ];
    for (let turn = 0; turn < turns.length; turn++) {
      await turns[(round + turn) % turns.length]();
    }
  }
  return { hook, raw, refused };
}

/**
 * The webhook against the raw upsert at batches of 10, 100 and 1,000 (goals at 10 and
 * 1,000), with the floor under it: a refused post and the raw upsert, per change.
 */
export async function webhookSection(
  sql: postgres.Sql,
  figure: Figure,
  goals: Goals,
): Promise<void> {
  const run = crypto.randomUUID().slice(0, 8);
  console.error(
    `bench: ${CHANGES_PER_SIZE} changes per batch size (at least ${MIN_BATCHES} batches), against ${stack.FUNCTIONS_URL}`,
  );
  try {
    // Warm up both paths (connections, plans, the function's first request).
    await benchPosts(`${run}-warm`, 10, CHANGES_PER_SIZE);
    await benchRaw(sql, `${run}-warm`, 10, CHANGES_PER_SIZE);
    for (const size of [10, 100, 1000]) {
      const { hook, raw, refused } = await benchBoth(sql, run, size);
      await checkSameRows(sql, run, size, raw.changes);
      const hookRate = hook.changes / hook.seconds;
      const rawRate = raw.changes / raw.seconds;
      // Seconds per change: a refused post, then the raw upsert of its rows.
      const floor = refused.seconds / refused.changes + raw.seconds / raw.changes;
      figure(`webhook_batch${size}_changes_per_second`, hookRate, 0);
      figure(`webhook_batch${size}_p50_ms`, percentile(hook.latencies, 50));
      figure(`webhook_batch${size}_p99_ms`, percentile(hook.latencies, 99));
      figure(`raw_upsert_batch${size}_changes_per_second`, rawRate, 0);
      figure(`raw_upsert_batch${size}_p99_ms`, percentile(raw.latencies, 99));
      figure(`webhook_batch${size}_time_vs_raw_upsert`, rawRate / hookRate, 2);
      figure(`webhook_batch${size}_refused_p50_ms`, percentile(refused.latencies, 50), 2);
      figure(`webhook_batch${size}_floor_vs_raw_upsert`, floor * rawRate, 2);
      figure(`webhook_batch${size}_time_vs_floor`, 1 / (hookRate * floor), 2);
      if (WEBHOOK_GOALS[size]) {
        goals.add({
          path: `webhook, signed batches of ${size}, one at a time`,
          now: `${formatted(hookRate)} changes/s`,
          raw: `${formatted(rawRate)} changes/s (bare multi-row upsert)`,
          ratio: rawRate / hookRate,
          kind: "max",
          target: WEBHOOK_GOALS[size],
          floor: {
            ratio: floor * rawRate,
            what: "a post refused at its signature, then the bare upsert",
          },
        });
      }
    }
  } finally {
    await sql`delete from public.firespring_actions where action_id like ${`bench-${run}%`}
              or action_id like ${`raw-${run}%`}`;
  }
}
