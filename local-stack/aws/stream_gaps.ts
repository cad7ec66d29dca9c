/**
 * Empty pages in the middle of a shard, as DynamoDB Streams may answer them, for the
 * stack's streams. AWS: "If there are no stream records available in the portion of the
 * shard that the iterator points to, GetRecords returns an empty list. Note that it might
 * take multiple calls to get to a portion of the shard that contains stream records"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
 * DynamoDB Local answers records as soon as the shard holds them. Tests turn gaps on for a
 * stream with a control request to the proxy:
 *
 *   POST {DYNAMODB_ENDPOINT}/__local/streams/gaps
 *   {"streamArn": "...", "emptyPages": 60}   (0: none)
 *
 * From then on, for that stream, every GetShardIterator's iterator, and every next iterator
 * of a page read, first answers `emptyPages` GetRecords with no records, each with a next
 * iterator of its own, then reads on where it stood. Each such iterator expires 15 minutes
 * after it is given ("A shard iterator expires 15 minutes after it is returned to the
 * requester", API_streams_GetShardIterator), as any other. The gaps live in the proxy's
 * memory until it restarts; an iterator given while a gap was on reads on as usual once
 * it is off. With no gap set, requests pass through untouched.
 *
 * The layer is outside the shards' readers (shard_readers.ts): it marks its iterators at
 * their end (`|gap|<left>|<issued>`), after the readers' own mark. Two ways it differs from
 * AWS, both in tests that turn gaps on only: the empty pages it answers are not counted
 * against a shard's two readers; and it hands on the iterator it stood at when the gap
 * began, whose 15 minutes DynamoDB Local counts from then, where AWS gives each page a
 * fresh one (a gap read for longer than that ends in ExpiredIteratorException).
 *
 * @module
 */

import { streamsOperation } from "./operations.ts";
import { awsError, awsJsonAnswer } from "./json_answer.ts";
import { ProxyLayer } from "./proxy_layer.ts";
import { ITERATOR_LIFETIME_MS } from "./shard_iterators.ts";
import { streamOfIterator } from "./stream_arns.ts";

/** The control path. */
export const GAPS_PATH = "/__local/streams/gaps";
const MARK = "|gap|";

/** `inner` with `left` empty pages to answer first, given at `issuedAt` (epoch ms). */
export function gapIterator(inner: string, left: number, issuedAt: number): string {
  return `${inner}${MARK}${left}|${issuedAt}`;
}

/** What an iterator of {@link gapIterator} stands for, or undefined for any other. */
export function parseGapIterator(
  iterator: string,
): { inner: string; left: number; issuedAt: number } | undefined {
  const at = iterator.lastIndexOf(MARK);
  if (at < 0) return undefined;
  const [left, issuedAt] = iterator.slice(at + MARK.length).split("|").map(Number);
  if (!Number.isSafeInteger(left) || !Number.isSafeInteger(issuedAt)) return undefined;
  return { inner: iterator.slice(0, at), left, issuedAt };
}

/** The gaps of the stack's streams, and the proxy hook that answers them. */
export class StreamGaps extends ProxyLayer {
  #pages = new Map<string, number>();

  /** Sets the empty pages before each read of `streamArn` (0: none). */
  set(streamArn: string, emptyPages: number): void {
    if (emptyPages > 0) this.#pages.set(streamArn, emptyPages);
    else this.#pages.delete(streamArn);
  }

  /** Serves the control path and the gaps; everything else goes to `next`. */
  async handle(request: Request, next: (request: Request) => Promise<Response>): Promise<Response> {
    if (new URL(request.url).pathname === GAPS_PATH) return await this.#control(request);
    const operation = streamsOperation(request);
    if (operation !== "GetShardIterator" && operation !== "GetRecords") {
      return await next(request);
    }
    const raw = await request.arrayBuffer();
    // The request as it came, bytes untouched (a body that is not UTF-8 or not JSON is
    // DynamoDB Local's to refuse).
    const forward = (body: BodyInit = raw) =>
      next(new Request(request.url, { method: "POST", headers: request.headers, body }));
    const text = new TextDecoder().decode(raw);
    // No gap set, and no iterator of one (a gap's mark is in no other): nothing to do.
    if (this.#pages.size === 0 && !text.includes(MARK)) return await forward();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text);
    } catch {
      return await forward();
    }
    if (typeof body !== "object" || body === null) return await forward();
    if (operation === "GetShardIterator") {
      const pages = this.#pages.get(String(body.StreamArn ?? ""));
      const response = await forward();
      if (!pages || !response.ok) return response;
      const answer = await response.json() as { ShardIterator?: string };
      if (answer.ShardIterator) {
        answer.ShardIterator = gapIterator(answer.ShardIterator, pages, this.now());
      }
      return awsJsonAnswer(response.status, answer, response.headers);
    }
    const gap = parseGapIterator(String(body.ShardIterator ?? ""));
    if (!gap) return await forward();
    if (this.now() - gap.issuedAt > ITERATOR_LIFETIME_MS) {
      return awsError("ExpiredIteratorException", "Iterator expired: it is older than 15 minutes");
    }
    const pages = this.#pages.get(streamOfIterator(gap.inner) ?? "");
    if (pages && gap.left > 0) {
      this.log(`GetRecords: an empty page of a gap (${gap.left - 1} more)`);
      return awsJsonAnswer(200, {
        Records: [],
        NextShardIterator: gapIterator(gap.inner, gap.left - 1, this.now()),
      });
    }
    const response = await forward(JSON.stringify({ ...body, ShardIterator: gap.inner }));
    if (!pages || !response.ok) return response;
    const answer = await response.json() as { NextShardIterator?: string };
    if (answer.NextShardIterator) {
      answer.NextShardIterator = gapIterator(answer.NextShardIterator, pages, this.now());
    }
    return awsJsonAnswer(response.status, answer, response.headers);
  }

  async #control(request: Request): Promise<Response> {
    if (request.method !== "POST") return new Response("POST only\n", { status: 405 });
    let body: { streamArn?: unknown; emptyPages?: unknown };
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "the body is not JSON" }, { status: 400 });
    }
    const { streamArn, emptyPages } = body;
    if (typeof streamArn !== "string" || !streamArn.includes(":table/")) {
      return Response.json({ error: "streamArn must be a stream's ARN" }, { status: 400 });
    }
    if (!Number.isSafeInteger(emptyPages) || (emptyPages as number) < 0) {
      return Response.json(
        { error: "emptyPages must be a whole number, 0 or more" },
        { status: 400 },
      );
    }
    this.set(streamArn, emptyPages as number);
    this.log(`stream ${streamArn}: ${emptyPages} empty pages before each read`);
    return Response.json({ streamArn, emptyPages });
  }
}
