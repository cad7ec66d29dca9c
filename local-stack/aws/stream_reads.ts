/**
 * The DynamoDB proxy's answer to a GetRecords: a poll of an idle stream answered without
 * DynamoDB Local (idle_polls.ts), any other passed on, its records given the second
 * their write took effect in (stream_times.ts), and no more of them than fit in 1 MB.
 * AWS: "GetRecords can retrieve a maximum of 1 MB of data or 1000 stream records,
 * whichever comes first"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html);
 * DynamoDB Local holds to the count only. A page past 1 MB (by its records' `SizeBytes`)
 * is asked for again with the `Limit` that fits, so that DynamoDB Local's own next
 * iterator follows the last record given.
 *
 * @module
 */

import type { IdlePolls } from "./idle_polls.ts";
import { awsJsonText } from "./json_answer.ts";
import { scopeOf } from "./scope.ts";
import { parseStreamArn, streamOfIterator } from "./stream_arns.ts";
import type { StreamTimes } from "./stream_times.ts";
import { passUpstream } from "./upstream.ts";

/** What the answers need. */
export interface StreamReadsOptions {
  /** DynamoDB Local's address. */
  upstream: string;
  streamTimes: StreamTimes;
  idlePolls?: IdlePolls;
  now: () => number;
}

/**
 * Whether DynamoDB Local would take the request: a ShardIterator and at most a Limit of
 * 1 to 1,000 (API_streams_GetRecords); anything else goes to it, to be refused there.
 */
function valid(body: object): boolean {
  const { ShardIterator, Limit, ...rest } = body as Record<string, unknown>;
  return typeof ShardIterator === "string" && Object.keys(rest).length === 0 &&
    (Limit === undefined || (Number.isInteger(Limit) && Number(Limit) >= 1 &&
      Number(Limit) <= 1000));
}

/** The most a GetRecords answer holds, in bytes of its records' `SizeBytes`. */
export const GET_RECORDS_MAX_BYTES = 1_048_576;

/**
 * How many of `records`, from the first, fit in `maxBytes` by their `SizeBytes` (a record
 * without one counts its JSON's length); at least one.
 */
export function recordsWithin(records: unknown[], maxBytes = GET_RECORDS_MAX_BYTES): number {
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    const data = (records[i] as { dynamodb?: { SizeBytes?: unknown } }).dynamodb;
    const size = typeof data?.SizeBytes === "number"
      ? data.SizeBytes
      : JSON.stringify(data ?? {}).length;
    bytes += size;
    if (bytes > maxBytes) return Math.max(1, i);
  }
  return records.length;
}

/** The handler of GetRecords requests (their bodies already read as `raw`). */
export function streamReads(options: StreamReadsOptions) {
  const { upstream, streamTimes, idlePolls, now } = options;
  return async (request: Request, raw: ArrayBuffer | undefined): Promise<Response> => {
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      body = undefined;
    }
    // Not a JSON object: DynamoDB Local's to refuse.
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return await passUpstream(upstream, request, raw);
    }
    const iterator = (body as { ShardIterator?: unknown }).ShardIterator;
    const stream = typeof iterator === "string" ? streamOfIterator(iterator) : undefined;
    const parsed = stream ? parseStreamArn(stream) : undefined;
    const scope = scopeOf(request.headers);
    const table = parsed && `${scope}/${parsed.table}`;
    if (idlePolls && table && valid(body) && idlePolls.answer(table, iterator as string, now())) {
      return awsJsonText(200, JSON.stringify({ Records: [], NextShardIterator: iterator }));
    }
    const writesBefore = table ? idlePolls?.writesTo(table) : undefined;
    let response = await passUpstream(upstream, request, raw);
    if (!response.ok) return response;
    let json = await response.json() as Record<string, unknown>;
    const records = Array.isArray(json.Records) ? json.Records : [];
    const fit = recordsWithin(records);
    if (fit < records.length) {
      // The same iterator again, for the records that fit: its next iterator follows them.
      const limited = new TextEncoder().encode(JSON.stringify({ ...body, Limit: fit }));
      const headers = new Headers(request.headers);
      headers.delete("content-length");
      response = await passUpstream(
        upstream,
        new Request(request.url, { method: "POST", headers }),
        limited.buffer,
      );
      if (!response.ok) return response;
      json = await response.json() as Record<string, unknown>;
    }
    await streamTimes.settled();
    if (stream && Array.isArray(json.Records)) {
      streamTimes.timeRecords(scope, stream, json.Records);
      const next = json.NextShardIterator;
      if (json.Records.length === 0 && typeof next === "string" && writesBefore !== undefined) {
        idlePolls?.answeredEmpty(table!, next, writesBefore, now());
      }
    }
    return awsJsonText(response.status, JSON.stringify(json), response.headers);
  };
}
