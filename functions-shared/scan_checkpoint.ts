/**
 * A Scan's checkpoint (its `LastEvaluatedKey`) as the segment stores it in
 * `sync.backfill_segments.exclusive_start_key`, a `jsonb`. Postgres's `jsonb` refuses a
 * string holding U+0000 ("unsupported Unicode escape sequence", SQLSTATE 22P05), which a
 * DynamoDB string may hold: a key with one, last on its page, would have its checkpoint
 * refused at every attempt, and the segment could never pass that page (its item is a dead
 * letter, as it should be; its key must not hold up the rest). Such a key is stored as
 * its JSON text in base64, `{"base64_json": "..."}`, which no key is: a key's attributes
 * are objects ({"S": ...}), never strings. Every other key is stored as it is, readable
 * in `sync.backfill_progress`.
 *
 * @module
 */

import { attributeMapFromJson } from "./attribute_binaries.ts";
import { base64ToBytes, bytesToBase64 } from "./dynamo_encoder.ts";
import { requestJson } from "./dynamo_wire.ts";
import type { Item } from "./segment_work.ts";

const WRAPPED = "base64_json";

/**
 * The checkpoint's JSON text for a `LastEvaluatedKey`. A binary (B) key attribute, which
 * the client decoded into bytes, is written as DynamoDB's JSON has it, base64 text (as
 * bytes, JSON would write an object of indices, which no Scan takes back as a key).
 */
export function checkpointText(key: Item): string {
  const text = requestJson(key);
  if (!text.includes("\\u0000")) return text;
  return JSON.stringify({ [WRAPPED]: bytesToBase64(new TextEncoder().encode(text)) });
}

/** The `ExclusiveStartKey` a stored checkpoint stands for (as the claim returns it). */
export function checkpointKey(stored: Item | Record<string, unknown> | null): Item | undefined {
  if (stored === null) return undefined;
  const wrapped = (stored as Record<string, unknown>)[WRAPPED];
  const key = typeof wrapped === "string"
    ? JSON.parse(new TextDecoder().decode(base64ToBytes(wrapped)))
    : stored;
  return attributeMapFromJson(key as Record<string, unknown>);
}
