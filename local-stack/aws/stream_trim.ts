/**
 * Trimming, as DynamoDB Streams does it, for the stack's streams. DynamoDB Local keeps
 * every stream record; AWS keeps one 24 hours and then may remove it ("trimming"): a
 * TRIM_HORIZON iterator starts after what was removed, and asking for a position in it
 * answers TrimmedDataAccessException
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).
 * Tests trim a stream up to a record with a control request to the proxy:
 *
 *   POST {DYNAMODB_ENDPOINT}/__local/streams/trim
 *   {"streamArn": "...", "throughSequenceNumber": "10000000000000000000042"}   (null: untrim)
 *
 * (a number as the stream gave it, which the proxy's edge, sequence_edge.ts, makes
 * DynamoDB Local's `000000000000000000042` before this hook reads it).
 * From then on, for that stream: GetShardIterator at or after a sequence number up to it
 * answers 400 TrimmedDataAccessException; a TRIM_HORIZON iterator taken after the trim
 * starts after what it trimmed (GetRecords leaves those records out of its pages, and of
 * the pages of the iterators that follow from it); and GetRecords with any other iterator
 * that is still at a trimmed record (one taken before the trim) answers 400
 * TrimmedDataAccessException, as AWS does when "a stream record in the shard exceeds the
 * 24 hour period and is trimmed" between GetShardIterator and GetRecords
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
 * DynamoDB Local numbers the records of a stream from one counter, so one number trims
 * every shard alike. The trims live in the proxy's memory until it restarts. Nothing else
 * changes: with no trim set, requests pass through untouched.
 *
 * @module
 */

import { streamsOperation } from "./operations.ts";
import { awsJsonAnswer as awsAnswer } from "./json_answer.ts";
import { streamOfIterator } from "./stream_arns.ts";

/** The control path. */
export const TRIM_PATH = "/__local/streams/trim";

/** Compares two sequence numbers (decimal text of up to 40 digits) as numbers. */
function seqAtMost(seq: string, limit: string): boolean {
  return BigInt(seq) <= BigInt(limit);
}

/** The trims of the stack's streams, and the proxy hook that applies them. */
export class StreamTrim {
  #through = new Map<string, string>();
  /** Iterators that start at a trim horizon taken after the trim, and those that follow. */
  #afterTrim = new Set<string>();

  constructor(private readonly log: (line: string) => void = () => {}) {}

  /** Trims `streamArn` through `seq` (inclusive), or untrims it with null. */
  trim(streamArn: string, seq: string | null): void {
    if (seq === null) this.#through.delete(streamArn);
    else this.#through.set(streamArn, seq);
    // This stream's iterators taken after its last trim may be at a record this one trims.
    for (const iterator of this.#afterTrim) {
      if (streamOfIterator(iterator) === streamArn) this.#afterTrim.delete(iterator);
    }
  }

  /** What `streamArn` is trimmed through, if anything. */
  trimmedThrough(streamArn: string): string | undefined {
    return this.#through.get(streamArn);
  }

  /** Serves the control path and applies the trims; everything else goes to `next`. */
  async handle(request: Request, next: (request: Request) => Promise<Response>): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === TRIM_PATH) return await this.#control(request);
    const operation = streamsOperation(request);
    if (
      this.#through.size === 0 ||
      (operation !== "GetShardIterator" && operation !== "GetRecords")
    ) {
      return await next(request);
    }
    const text = await request.text();
    const forward = new Request(request.url, {
      method: request.method,
      headers: request.headers,
      body: text,
    });
    const body = JSON.parse(text) as Record<string, string | undefined>;
    if (operation === "GetShardIterator") {
      const limit = this.#through.get(body.StreamArn ?? "");
      const positioned = body.ShardIteratorType === "AT_SEQUENCE_NUMBER" ||
        body.ShardIteratorType === "AFTER_SEQUENCE_NUMBER";
      if (limit && positioned && body.SequenceNumber && seqAtMost(body.SequenceNumber, limit)) {
        this.log(`GetShardIterator ${body.ShardId}: ${body.SequenceNumber} is trimmed`);
        return trimmed(
          `${body.SequenceNumber} of ${body.ShardId} is at or before the trim point ${limit}`,
        );
      }
      const response = await next(forward);
      if (limit && body.ShardIteratorType === "TRIM_HORIZON" && response.ok) {
        const { ShardIterator } = await response.clone().json() as { ShardIterator?: string };
        if (ShardIterator) this.#remember(ShardIterator);
      }
      return response;
    }
    // GetRecords: the iterator begins with the stream's ARN ("<arn>|...").
    const iterator = String(body.ShardIterator ?? "");
    const stream = streamOfIterator(iterator);
    const limit = stream && this.#through.get(stream);
    const response = await next(forward);
    if (!limit || !response.ok) return response;
    const page = await response.json() as {
      Records?: { dynamodb: { SequenceNumber: string } }[];
      NextShardIterator?: string;
    };
    const records = page.Records ?? [];
    const first = records[0]?.dynamodb.SequenceNumber;
    if (!this.#afterTrim.has(iterator)) {
      if (first !== undefined && seqAtMost(first, limit)) {
        this.log(`GetRecords: an iterator at ${first}, trimmed through ${limit}`);
        return trimmed(`the iterator is at ${first}, at or before the trim point ${limit}`);
      }
      return awsAnswer(response.status, page, response.headers);
    }
    page.Records = records.filter((r) => !seqAtMost(r.dynamodb.SequenceNumber, limit));
    if (page.NextShardIterator) this.#remember(page.NextShardIterator);
    return awsAnswer(response.status, page, response.headers);
  }

  /** Notes an iterator that starts after the trim (the set is bounded: oldest out). */
  #remember(iterator: string): void {
    this.#afterTrim.add(iterator);
    if (this.#afterTrim.size > 10_000) {
      this.#afterTrim.delete(this.#afterTrim.values().next().value!);
    }
  }

  async #control(request: Request): Promise<Response> {
    if (request.method !== "POST") return new Response("POST only\n", { status: 405 });
    let body: { streamArn?: unknown; throughSequenceNumber?: unknown };
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "the body is not JSON" }, { status: 400 });
    }
    const { streamArn, throughSequenceNumber: seq } = body;
    if (typeof streamArn !== "string" || streamArn === "") {
      return Response.json({ error: "streamArn must be a stream's ARN" }, { status: 400 });
    }
    if (seq !== null && !(typeof seq === "string" && /^\d{1,40}$/.test(seq))) {
      return Response.json(
        { error: "throughSequenceNumber must be a sequence number (digits) or null" },
        { status: 400 },
      );
    }
    this.trim(streamArn, seq);
    this.log(`stream ${streamArn} trimmed through ${seq ?? "nothing"}`);
    return Response.json({ streamArn, trimmedThrough: seq });
  }
}

/** AWS's answer for a read of trimmed data. */
function trimmed(detail: string): Response {
  return awsAnswer(400, {
    __type: "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException",
    message: `The data you are trying to access has been trimmed: ${detail}`,
  });
}
