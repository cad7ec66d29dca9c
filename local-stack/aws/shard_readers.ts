/**
 * The readers of each stream shard, held to AWS's limit: "More than 2 processes are
 * reading from the same streams shard at the same time. Exceeding this limit may result in
 * request throttling." (DynamoDB Streams API reference, LimitExceededException,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html;
 * the developer guide: "No more than two processes at most should be reading from the same
 * streams shard at the same time.") DynamoDB Local serves any number.
 *
 * A reader is one line of iterators: GetShardIterator starts one, and each GetRecords's
 * `NextShardIterator` goes on with the reader of the iterator it was asked with. This
 * layer, outside every other of the proxy (local-stack/aws/main.ts), marks each iterator
 * it gives with its reader (`|reader|<n>` at its end) and takes the mark off before a
 * request goes on. A reader reads a shard while it asked for the shard's records within
 * the last {@link READING_MS} (the stack's poller longer: see `handle`). A GetRecords of a
 * shard that more than {@link MAX_READERS} readers are reading, its own reader counted,
 * is answered 400
 * `LimitExceededException`, unforwarded: whichever reader asks, as AWS
 * throttles the shard's reads, not one process. A throttled read counts as reading, so a
 * third reader that keeps asking keeps the shard throttled for all three, until it stops.
 * An iterator without the mark (one given before this layer ran) is passed on uncounted.
 *
 * @module
 */

import { awsError, awsJsonAnswer } from "./json_answer.ts";
import { iteratorShard, unwrapIterator } from "./shard_iterators.ts";
import { scopeOf } from "./scope.ts";
import { streamOfIterator } from "./stream_arns.ts";
import { type LayerOptions, ProxyLayer } from "./proxy_layer.ts";
import { IDLE_REFRESH_MS, MAPPING_HEADER } from "./stream_watch.ts";

/** Readers a shard serves at once; one more throttles its reads. */
export const MAX_READERS = 2;
/**
 * How long after its last GetRecords a reader still counts as reading the shard: twice
 * the interval at which Lambda's mapping polls a shard (four times a second). A process
 * that took over from another (a request handing on) is a third reader for that long.
 */
export const READING_MS = 500;

const MARK = "|reader|";
/** The reader that the stack's poller is, whatever its iterators' marks (readers start at 1). */
const MAPPING_READER = 0;
const TARGET = "DynamoDBStreams_20120810.";

type Next = (request: Request) => Promise<Response>;

/** `iterator` marked as read by `reader`. */
export function markIterator(iterator: string, reader: number): string {
  return `${iterator}${MARK}${reader}`;
}

/** The iterator without its reader's mark, and the reader (none when unmarked). */
export function unmarkIterator(marked: string): { iterator: string; reader?: number } {
  const at = marked.lastIndexOf(MARK);
  if (at < 0) return { iterator: marked };
  const reader = Number(marked.slice(at + MARK.length));
  if (!Number.isSafeInteger(reader)) return { iterator: marked };
  return { iterator: marked.slice(0, at), reader };
}

/** The shard an iterator reads, named by its stream: undefined when it names none. */
function shardOf(iterator: string): string | undefined {
  const stream = streamOfIterator(iterator);
  const unwrapped = unwrapIterator(iterator);
  const shard = unwrapped ? unwrapped.shardId : iteratorShard(iterator);
  return stream && shard ? `${stream} ${shard}` : undefined;
}

/**
 * How the layer knows the stack's poller (stream_watch.ts): its reads carry
 * {@link MAPPING_HEADER} with `mark()` as the value (the proxy's instance, which only the
 * poller learns), and `watching()` says whether its watch of the proxy's writes is on.
 */
export interface MappingReads {
  mark: () => string;
  watching: () => boolean;
}

/**
 * How long the stack's poller counts as reading a shard after its last read while its
 * watch is on: it leaves out polls for up to {@link IDLE_REFRESH_MS}, and its next poll
 * may come late on a loaded machine. On AWS the mapping never stops reading.
 */
export const MAPPING_READING_MS = IDLE_REFRESH_MS + 5_000;

/** The layer: see the module's comment. */
export class ShardReaders extends ProxyLayer {
  #next = 1;
  readonly #mapping?: MappingReads;

  constructor(options: LayerOptions & { mapping?: MappingReads } = {}) {
    super(options);
    this.#mapping = options.mapping;
  }
  /** Scope and shard → reader → when it last asked for the shard's records. */
  #reads = new Map<string, Map<number, number>>();

  /** Answers a GetShardIterator or GetRecords through `next`; any other passes on. */
  async handle(request: Request, next: Next): Promise<Response> {
    const target = request.headers.get("x-amz-target") ?? "";
    if (request.method !== "POST" || !target.startsWith(TARGET)) return await next(request);
    const operation = target.slice(TARGET.length);
    if (operation === "GetShardIterator") {
      return await this.#marked(await next(request), "ShardIterator", this.#next++);
    }
    if (operation !== "GetRecords") return await next(request);
    const raw = await request.text();
    const again = (text: string) => {
      const headers = new Headers(request.headers);
      headers.delete("content-length");
      return new Request(request.url, { method: "POST", headers, body: text });
    };
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw);
    } catch {
      return await next(again(raw)); // DynamoDB Local's to refuse
    }
    if (typeof body?.ShardIterator !== "string") return await next(again(raw));
    const { iterator, reader } = unmarkIterator(body.ShardIterator);
    if (reader === undefined) return await next(again(raw));
    const shard = shardOf(iterator);
    const mapping = this.#mapping !== undefined &&
      request.headers.get(MAPPING_HEADER) === this.#mapping.mark();
    const key = shard === undefined ? undefined : `${scopeOf(request.headers)} ${shard}`;
    if (key !== undefined) {
      const readers = this.#reading(key);
      // The stack's poller is one reader, whichever iterator it reads with (it takes a new
      // one after an error), and reads longer (#reading).
      readers.set(mapping ? MAPPING_READER : reader, this.now());
      if (readers.size > MAX_READERS) {
        this.log(
          `GetRecords of ${shard} by reader ${reader}: ${readers.size} readers at once ` +
            `(${[...readers.keys()].join(", ")}; AWS allows ${MAX_READERS}); throttled ` +
            "(LimitExceededException)",
        );
        return awsError(
          "LimitExceededException",
          `Too many operations for a given subscriber: more than ${MAX_READERS} processes are ` +
            "reading from the same streams shard at the same time",
        );
      }
    }
    const forwarded = again(JSON.stringify({ ...body, ShardIterator: iterator }));
    return await this.#marked(await next(forwarded), "NextShardIterator", reader, (json) => {
      // A shard read to its end: the poller reads it no more.
      if (mapping && key !== undefined && json.NextShardIterator === undefined) {
        this.#reads.get(key)?.delete(MAPPING_READER);
      }
    });
  }

  /** How long after its last read `reader` still counts as reading. */
  #readingMs(reader: number): number {
    return reader === MAPPING_READER && this.#mapping?.watching() ? MAPPING_READING_MS : READING_MS;
  }

  /** The readers of `key` that still read it; those before are forgotten. */
  #reading(key: string): Map<number, number> {
    const now = this.now();
    let readers = this.#reads.get(key);
    if (!readers) this.#reads.set(key, readers = new Map());
    for (const [reader, at] of readers) {
      if (now - at > this.#readingMs(reader)) readers.delete(reader);
    }
    // Shards nobody reads any more are forgotten too.
    for (const [other, its] of this.#reads) {
      if (
        other !== key && [...its].every(([reader, at]) => now - at > this.#readingMs(reader))
      ) {
        this.#reads.delete(other);
      }
    }
    return readers;
  }

  /** `response` with its iterator `field` marked as `reader`'s (an error as it is). */
  async #marked(
    response: Response,
    field: string,
    reader: number,
    seen: (json: Record<string, unknown>) => void = () => {},
  ): Promise<Response> {
    if (!response.ok) return response;
    const json = await response.json() as Record<string, unknown>;
    seen(json);
    if (typeof json[field] === "string") json[field] = markIterator(json[field] as string, reader);
    return awsJsonAnswer(response.status, json, response.headers);
  }
}
