/**
 * What the webhook's end-to-end tests share (tests/webhook_test.ts,
 * tests/webhook_dead_letters_test.ts): stream records of the segments table and a count
 * of its rows.
 *
 * @module
 */

import { connectDb, streamRecord } from "./stack_clients.ts";

/** The segments table, which these tests write to. */
export const SEGMENTS = "firespring-backdoor-segments-dev";

/** A stream INSERT of a segment. */
export function segment(id: string, name: string, seq: string, value: unknown = { N: "5" }) {
  return streamRecord(SEGMENTS, "INSERT", { segment_id: { S: id } }, {
    segment_id: { S: id },
    name: { S: name },
    value,
  }, seq);
}

/** How many segment rows have an id that starts with `prefix`. */
export async function countSegments(prefix: string): Promise<number> {
  const sql = connectDb();
  try {
    const [row] = await sql`select count(*)::int as n from public.firespring_segments
                            where segment_id like ${prefix + "%"}`;
    return row.n;
  } finally {
    await sql.end();
  }
}
