/**
 * What the poison value tests share (tests/poison_values_test.ts,
 * tests/poison_values_backfill_test.ts): the poison values, stream records of the actions
 * table, and reading its rows and dead letters.
 *
 * @module
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { connectDb, streamRecord } from "./stack_clients.ts";

/** The actions table, where the poison values go. */
export const ACTIONS = "firespring-backdoor-actions-dev";
/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;
/** A string attribute. */
export const S = (s: string): AttributeValue => ({ S: s });

/** Kind, poison attributes, the cause the reason names, and whether DynamoDB Local can hold it. */
export const POISON: [string, Item, RegExp, boolean][] = [
  [
    "U+0000 in a column",
    { session_id: S("s\u0000") },
    /attribute session_id: the string contains U\+0000/,
    true,
  ],
  [
    "U+0000 nested in the catch-all",
    { meta: { M: { title: S("t\u0000") } } },
    /attribute meta\.title: the string contains U\+0000/,
    true,
  ],
  [
    "U+0000 in a map key",
    { meta: { M: { ["k\u0000"]: S("v") } } },
    /attribute meta: the map key "k\\u0000" contains U\+0000/,
    true,
  ],
  [
    "a lone surrogate",
    { meta: { M: { list: { L: [S("x\ud800")] } } } },
    /attribute meta\.list\[0\]: the string is not valid UTF-16/,
    true,
  ],
  [
    "a lone surrogate in a map key",
    { meta: { M: { ["\udc00"]: S("v") } } },
    /attribute meta: the map key "\\udc00" is not valid UTF-16/,
    true,
  ],
  [
    "a zone offset of +16:00",
    { created_at: S("2026-02-06T10:00:00+16:00") },
    /attribute created_at: expected an ISO-8601 timestamp, got "2026-02-06T10:00:00\+16:00" \(its zone offset \+16:00 is beyond/,
    true,
  ],
  [
    "a zone offset of +05:99",
    { created_at: S("2026-02-06T10:00:00+05:99") },
    /attribute created_at: expected an ISO-8601 timestamp, got "2026-02-06T10:00:00\+05:99"/,
    true,
  ],
  ['N "abc"', { score: { N: "abc" } }, /attribute score: "abc" is not a number/, false],
  ['N ""', { score: { N: "" } }, /attribute score: "" is not a number/, false],
  [
    'N "1e999"',
    { score: { N: "1e999" } },
    /attribute score: "1e999" is out of DynamoDB's number range/,
    false,
  ],
];

/** A text as a RegExp that matches it literally. */
export const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A stream sequence number of this run, larger than any before it in the run. */
let seqCounter = 0;
export const nextSeq = () => `${Date.now()}${String(seqCounter++).padStart(4, "0")}`;

/** A stream INSERT of an action `id` with `extra` attributes. */
export function actionRecord(id: string, extra: Item = {}, seq = nextSeq()) {
  return streamRecord(ACTIONS, "INSERT", { action_id: S(id) }, {
    action_id: S(id),
    session_id: S("s-1"),
    ...extra,
  }, seq);
}

/** Runs `fn` with a connection of its own, closed after. */
export async function withDb<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = connectDb();
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/** The ids of the action rows whose id starts with `prefix`, sorted. */
export async function actionIds(sql: postgres.Sql, prefix: string): Promise<string[]> {
  const rows = await sql`select action_id from public.firespring_actions
                         where action_id like ${prefix + "%"} order by action_id`;
  return rows.map((r) => r.action_id);
}

/** The dead letters of action `id` from `source` (stream or backfill). */
export async function lettersFor(sql: postgres.Sql, id: string, source: string) {
  return await sql`select id, reason, position_source, position_seq::text as seq, position_at,
                          row_key, times_seen, replayed_at, record is null as as_text
                   from sync.dead_letters
                   where row_key = ${sql.json({ action_id: id })} and position_source = ${source}`;
}
