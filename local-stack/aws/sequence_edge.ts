/**
 * The proxy's edge for stream sequence numbers (local-stack/aws/main.ts, beside
 * region_arns.ts's edge for ARNs): DynamoDB Local's fixed-width numbers go out shaped as
 * AWS's, of 21 to 40 digits and no leading zero (sequence_numbers.ts), and come back in
 * as DynamoDB Local's before anything behind the edge reads them. Every layer behind it
 * (the streams' trims, shards, readers and gaps, the stream times) keeps working on
 * DynamoDB Local's numbers; every client in front of it (the stack's event source mapping
 * and poller, the lost-record check, the tests) sees only AWS's shape.
 *
 * - A DynamoDB Streams answer has its records' `dynamodb.SequenceNumber` and its shards'
 *   `SequenceNumberRange` (`StartingSequenceNumber`, `EndingSequenceNumber`) made AWS's,
 *   and the numbers in an error's message too (the trim's, a shard's range). Item data
 *   (`Keys`, `NewImage`, `OldImage`) is never touched.
 * - GetShardIterator's `SequenceNumber` (AT_ and AFTER_SEQUENCE_NUMBER) is made DynamoDB
 *   Local's. One that no number of the stand-in maps to is answered 400
 *   ValidationException, as AWS answers a malformed one: DynamoDB Local would read a
 *   zero-padded number, or one of 21 digits it never gave, where AWS refuses both.
 * - The stack's own control paths under `/__local/streams/` take and give numbers as
 *   its clients saw them: the trim's `throughSequenceNumber` in, `trimmedThrough` and the
 *   shards' ranges out; a number the stand-in never gave is refused (400).
 *
 * Other requests (DynamoDB's, not its streams') pass untouched.
 *
 * @module
 */

import { awsError, awsJsonText } from "./json_answer.ts";
import { streamsOperation } from "./operations.ts";
import { withBody } from "./request_body.ts";
import {
  awsSequenceNumber,
  invalidSequenceNumber,
  localSequenceNumber,
} from "./sequence_numbers.ts";

type Handler = (request: Request) => Promise<Response>;

/** The stack's control paths of its streams (stream_trim.ts, stream_shards.ts, stream_gaps.ts). */
export const CONTROL_PREFIX = "/__local/streams/";

/** Keys whose string values an answer gives as sequence numbers. */
const OUT_KEYS = new Set([
  "SequenceNumber",
  "StartingSequenceNumber",
  "EndingSequenceNumber",
  "trimmedThrough",
]);
/** Keys of a request whose string value is a sequence number (GetShardIterator's, the trim's). */
const IN_KEYS = ["SequenceNumber", "throughSequenceNumber"];
/** Keys whose values are item data. */
const ITEM_DATA = new Set(["Keys", "NewImage", "OldImage"]);
/** A number as DynamoDB Local writes it, inside an error's words. */
const LOCAL_NUMBER = /(?<!\d)\d{21}(?!\d)/g;

/**
 * `value` (parsed JSON) with the sequence numbers of {@link OUT_KEYS} made AWS's;
 * `seen.changed` tells whether any was.
 */
export function outwardNumbers(value: unknown, seen = { changed: false }): unknown {
  if (Array.isArray(value)) return value.map((v) => outwardNumbers(v, seen));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (ITEM_DATA.has(key)) out[key] = v;
    else if (OUT_KEYS.has(key) && typeof v === "string" && /^\d{1,21}$/.test(v)) {
      out[key] = awsSequenceNumber(v);
      seen.changed = true;
    } else out[key] = outwardNumbers(v, seen);
  }
  return out;
}

/** An error's `message` with DynamoDB Local's numbers in it made AWS's. */
export function outwardMessage(message: string): string {
  return message.replace(LOCAL_NUMBER, (n) => awsSequenceNumber(n));
}

/**
 * A request's body (parsed JSON) with its sequence numbers made DynamoDB Local's, or the
 * words of the number that no number of the stand-in maps to.
 */
export function inwardNumbers(
  body: Record<string, unknown>,
): { body: Record<string, unknown>; changed: boolean } | { invalid: string } {
  let out = body;
  for (const key of IN_KEYS) {
    const value = body[key];
    if (typeof value !== "string") continue;
    const local = localSequenceNumber(value);
    if (local === undefined) return { invalid: invalidSequenceNumber(value) };
    out = { ...out, [key]: local };
  }
  return { body: out, changed: out !== body };
}

/** `handler` behind the edge for sequence numbers (see the module's words). */
export function sequenceEdge(handler: Handler): Handler {
  return async (request) => {
    const control = new URL(request.url).pathname.startsWith(CONTROL_PREFIX);
    if (!control && streamsOperation(request) === "") return await handler(request);
    let forward = request;
    if (request.method === "POST") {
      const text = await request.text();
      forward = withBody(request, text);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined; // not JSON: behind the edge to refuse, as it would
      }
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
        const inward = inwardNumbers(parsed as Record<string, unknown>);
        if ("invalid" in inward) {
          return control
            ? Response.json({ error: inward.invalid }, { status: 400 })
            : awsError("ValidationException", inward.invalid);
        }
        if (inward.changed) forward = withBody(request, JSON.stringify(inward.body));
      }
    }
    return await outward(await handler(forward), control);
  };
}

/** `response` with its sequence numbers AWS's; its `x-amz-crc32` recomputed. */
async function outward(response: Response, control: boolean): Promise<Response> {
  if (response.body === null) return response;
  const text = await response.text();
  const init = { status: response.status, statusText: response.statusText };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return new Response(text, { ...init, headers: response.headers });
  }
  const seen = { changed: false };
  let out = outwardNumbers(parsed, seen) as Record<string, unknown>;
  for (const key of ["message", "Message"]) {
    if (response.status >= 400 && out && typeof out[key] === "string") {
      const message = outwardMessage(out[key] as string);
      if (message !== out[key]) seen.changed = true;
      out = { ...out, [key]: message };
    }
  }
  // Unchanged, the bytes as they came (JSON.stringify may space or spell them otherwise).
  if (!seen.changed) return new Response(text, { ...init, headers: response.headers });
  const outText = JSON.stringify(out);
  if (control) {
    const headers = new Headers(response.headers);
    headers.delete("content-length");
    return new Response(outText, { ...init, headers });
  }
  return awsJsonText(response.status, outText, response.headers);
}
