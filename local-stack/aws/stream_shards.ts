/**
 * Shards that close and split, as AWS's do, for the stack's streams (the model:
 * local-stack/aws/shard_lineage.ts; DescribeStream's listing: shard_listing.ts). DynamoDB Local rolls its one open shard per stream
 * over every 4 hours and never splits it; tests close and split shards on request, with a
 * control request to the proxy (local-stack/aws/stream_shards_control.ts):
 *
 *   POST {DYNAMODB_ENDPOINT}/__local/streams/shards
 *   {"streamArn": "...", "region": "us-east-1", "split": 2}   (split: children per shard, 1 by default)
 *
 * Every open shard of the stream closes at its last record, with `split` children each
 * (one no record came to closes empty, as AWS rolls idle shards over too); the answer
 * lists the stream's shards. From then on, for that stream:
 * - DescribeStream lists the lineage after the real shards closed before it: closed
 *   shards with their `EndingSequenceNumber`, children with their `ParentShardId` (in
 *   pages of `Limit`, 1 to 100, from `ExclusiveStartShardId`);
 * - GetShardIterator answers for each shard (shard_iterator_answer.ts; TRIM_HORIZON from its first record; LATEST of
 *   a closed shard is its end; a sequence number outside the shard is a
 *   ValidationException);
 * - GetRecords gives a shard only its own records, and no `NextShardIterator` once a
 *   closed shard is read to its end. A page whose records all went to a sibling is read on
 *   past in the proxy (without drawing faults again), so that empty pages come only at the
 *   shard's current end.
 * DynamoDB Local's own rollover closes every open shard at its real shard's end, each with
 * one child. A closed shard whose every record the stream trimmed (stream_trim.ts) is no
 * longer listed, as AWS deletes it. A read waits for a close in progress on its stream, so that no record past
 * the cut is given by the shard it closes.
 *
 * A stream never closed passes through untouched. The lineages are kept in
 * `.local/stream-shards.json` (a restarted proxy keeps them; `stack:up` forgets them with
 * a fresh DynamoDB Local).
 *
 * @module
 */

import { streamsOperation } from "./operations.ts";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_DIR } from "../config.ts";
import { awsError, awsJsonAnswer } from "./json_answer.ts";
import {
  followReal,
  type Lineage,
  newLineage,
  openReal,
  padSeq,
  type RealShard,
  rollOver,
  windowOf,
} from "./shard_lineage.ts";
import { describedShards, pageOfShards, withoutTrimmed } from "./shard_listing.ts";
import { inListingOrder } from "./shard_order.ts";
import {
  ITERATOR_LIFETIME_MS,
  iteratorPosition,
  iteratorShard,
  unwrapIterator,
  wrapIterator,
} from "./shard_iterators.ts";
import { lineageIterator } from "./shard_iterator_answer.ts";
import { ownRequest, readCloseRequest, SHARDS_PATH } from "./stream_shards_control.ts";
import { withBody } from "./request_body.ts";

export { SHARDS_PATH };
/** Where the stack keeps its streams' lineages. */
export const STREAM_SHARDS_FILE = join(LOCAL_DIR, "stream-shards.json");
/** Pages of a sibling's records read past in one GetRecords at most. */
const SIBLING_PAGES = 20;

type Next = (request: Request) => Promise<Response>;
type Body = Record<string, unknown>;
interface StreamRecord {
  dynamodb: { SequenceNumber: string; Keys?: Record<string, unknown> };
}

/** What the hook needs. */
export interface StreamShardsOptions {
  /** Where the lineages are kept (none: in memory only). */
  file?: string;
  /** The access key of the control's own requests (DynamoDB Local keeps a database per key). */
  accessKeyId: string;
  /** What a stream is trimmed through (stream_trim.ts), if anything. */
  trimmedThrough?: (streamArn: string) => string | undefined;
  /** The clock (epoch ms). */
  now?: () => number;
  log?: (line: string) => void;
}

/** The lineages of the stack's streams, and the proxy hook that serves them. */
export class StreamShards {
  #lineages = new Map<string, Lineage>();
  /** Closes in progress, by stream: reads of the stream wait for them. */
  #closing = new Map<string, Promise<unknown>>();

  constructor(private readonly options: StreamShardsOptions) {
    if (options.file && existsSync(options.file)) {
      let kept: Record<string, Lineage>;
      try {
        kept = JSON.parse(readFileSync(options.file, "utf8"));
      } catch (error) {
        throw new Error(
          `${options.file} is not the stream shards this proxy wrote (${error}); ` +
            "npm run stack:down then stack:up starts DynamoDB Local and the file afresh",
        );
      }
      for (const [arn, lineage] of Object.entries(kept)) this.#lineages.set(arn, lineage);
    }
  }

  #now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The lineage of `streamArn`, when it was ever closed. */
  lineage(streamArn: string): Lineage | undefined {
    return this.#lineages.get(streamArn);
  }

  /** Serves the control path and the lineages; everything else goes to `next`. */
  async handle(request: Request, next: Next): Promise<Response> {
    if (new URL(request.url).pathname === SHARDS_PATH) return await this.#control(request, next);
    const operation = streamsOperation(request);
    // Every GetRecords comes here: one answered while a close is in progress may hold
    // records past its cut, though its stream had no lineage when it was asked.
    if (
      operation !== "GetRecords" &&
      (this.#lineages.size === 0 || !["DescribeStream", "GetShardIterator"].includes(operation))
    ) {
      return await next(request);
    }
    const text = await request.text();
    let body: Body;
    try {
      body = JSON.parse(text);
    } catch {
      return await next(withBody(request, text));
    }
    if (operation === "GetRecords") return await this.#records(request, body, next);
    const lineage = this.#lineages.get(String(body.StreamArn));
    if (!lineage) return await next(withBody(request, text));
    if (operation === "DescribeStream") return await this.#describe(request, body, next);
    return await lineageIterator(request, body, lineage, this.#now(), next);
  }

  /** {@link followReal}, its rollovers kept and logged. */
  #follow(streamArn: string, lineage: Lineage, answer: { Shards?: RealShard[] }) {
    const followed = followReal(lineage, answer.Shards ?? []);
    for (const ending of followed.endings) {
      this.#set(streamArn, followed.lineage, `DynamoDB Local rolled its shard over at ${ending}`);
    }
    return followed;
  }

  async #describe(request: Request, body: Body, next: Next) {
    const { ExclusiveStartShardId, Limit, ...rest } = body;
    const response = await next(withBody(request, JSON.stringify(rest)));
    if (!response.ok) return response;
    const answer = await response.json() as { StreamDescription: Body & { Shards?: RealShard[] } };
    const streamArn = String(body.StreamArn);
    const { before, lineage } = this.#follow(
      streamArn,
      this.#lineages.get(streamArn)!,
      answer.StreamDescription,
    );
    // In no chronological order, as AWS promises none (shard_order.ts).
    const listed = inListingOrder(withoutTrimmed(
      [...before, ...describedShards(lineage)],
      this.options.trimmedThrough?.(streamArn),
    ));
    const paged = pageOfShards(listed, Limit, ExclusiveStartShardId);
    if (typeof paged === "string") return awsError("ValidationException", paged);
    const { LastEvaluatedShardId: _, ...description } = answer.StreamDescription;
    return awsJsonAnswer(200, {
      StreamDescription: {
        ...description,
        Shards: paged.page,
        ...(paged.lastEvaluated ? { LastEvaluatedShardId: paged.lastEvaluated } : {}),
      },
    }, response.headers);
  }

  async #records(request: Request, body: Body, next: Next): Promise<Response> {
    const given = String(body.ShardIterator ?? "");
    const stream = given.split("|")[0];
    const unwrapped = unwrapIterator(given);
    if (unwrapped && "ended" in unwrapped) {
      if (this.#now() - unwrapped.issuedAt > ITERATOR_LIFETIME_MS) {
        return awsError(
          "ExpiredIteratorException",
          "Iterator expired: it is older than 15 minutes",
        );
      }
      return awsJsonAnswer(200, { Records: [] });
    }
    let iterator = unwrapped?.real ?? given;
    for (let page = 0;; page++) {
      const response = await next(
        withBody(request, JSON.stringify({ ...body, ShardIterator: iterator }), page > 0),
      );
      if (!response.ok) return response;
      // A close that began before this answer ends first: its cut then bounds the page.
      await this.#closing.get(stream);
      const shards = this.#lineages.get(stream)?.shards ?? [];
      // DynamoDB Local's own iterator of the lineage's first shard (one taken before the
      // stream was first closed) reads that shard; any other is DynamoDB Local's own.
      const shardId = unwrapped?.shardId ?? iteratorShard(given);
      const shard = shards.find((s) => s.id === shardId);
      if (!shard && unwrapped) {
        return awsError("ExpiredIteratorException", "Iterator expired: its shard is gone");
      }
      if (!shard) return response;
      const answer = await response.json() as {
        Records?: StreamRecord[];
        NextShardIterator?: string;
      };
      const records = answer.Records ?? [];
      const { mine, ended } = windowOf(shard, records, answer.NextShardIterator);
      const nextIterator = ended ? undefined : wrapIterator(answer.NextShardIterator!, shard.id);
      if (mine.length > 0 || !nextIterator || records.length === 0 || page + 1 >= SIBLING_PAGES) {
        return awsJsonAnswer(200, {
          Records: mine,
          ...(nextIterator ? { NextShardIterator: nextIterator } : {}),
        }, response.headers);
      }
      iterator = answer.NextShardIterator!; // every record was a sibling's: read on
    }
  }

  async #control(request: Request, next: Next): Promise<Response> {
    const asked = await readCloseRequest(request);
    if (asked instanceof Response) return asked;
    const { streamArn, region, split } = asked;
    const call = async (operation: string, input: Body) => {
      for (let attempt = 1;; attempt++) {
        const own = ownRequest(request.url, this.options.accessKeyId, region, operation, input);
        const response = await next(own);
        if (response.ok) return await response.json();
        // DYNAMODB_FAULTS' error_rate fails stream requests too: asked again.
        if (response.status < 500 || attempt === 5) {
          throw new Error(`${operation} on ${streamArn}: ${await response.text()}`);
        }
      }
    };
    // One close of a stream at a time (each cuts what the one before it made), and reads of
    // the stream wait for every close queued.
    const queued = this.#closing.get(streamArn);
    let closed!: () => void;
    const barrier = new Promise<void>((resolve) => closed = resolve);
    this.#closing.set(streamArn, barrier);
    await queued;
    try {
      const { StreamDescription } = await call("DescribeStream", { StreamArn: streamArn });
      const real = (StreamDescription.Shards ?? []) as RealShard[];
      const open = real.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
      if (!this.#lineages.has(streamArn) && open.length !== 1) {
        throw new Error(`${streamArn} has ${open.length} open shards, not 1`);
      }
      const known = this.#lineages.get(streamArn) ?? newLineage(open[0]);
      let { lineage } = this.#follow(streamArn, known, StreamDescription);
      const { ShardIterator } = await call("GetShardIterator", {
        StreamArn: streamArn,
        ShardId: openReal(lineage),
        ShardIteratorType: "LATEST",
      });
      const latest = iteratorPosition(ShardIterator);
      if (!latest) throw new Error(`DynamoDB Local's iterator has no position: ${ShardIterator}`);
      const cut = padSeq(BigInt(latest) - 1n);
      lineage = rollOver(lineage, cut, split);
      this.#set(streamArn, lineage, `shards closed through ${cut}, ${split} child(ren) each`);
      return Response.json({ streamArn, shards: describedShards(lineage) });
    } catch (error) {
      const status = error instanceof RangeError ? 400 : 502;
      return Response.json({ error: (error as Error).message }, { status });
    } finally {
      if (this.#closing.get(streamArn) === barrier) this.#closing.delete(streamArn);
      closed();
    }
  }

  /** Keeps `lineage` for `streamArn` (whole or not at all in the file), logging why. */
  #set(streamArn: string, lineage: Lineage, why: string): void {
    this.#lineages.set(streamArn, lineage);
    this.options.log?.(`stream ${streamArn}: ${why}`);
    if (!this.options.file) return;
    writeFileSync(`${this.options.file}.new`, JSON.stringify(Object.fromEntries(this.#lineages)));
    renameSync(`${this.options.file}.new`, this.options.file);
  }
}
