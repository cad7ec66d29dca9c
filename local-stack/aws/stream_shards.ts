/**
 * Shards that close and split, as AWS's do, for the stack's streams (the model:
 * local-stack/aws/shard_lineage.ts). DynamoDB Local keeps one open shard per stream for
 * ever; tests close it on request, with a control request to the proxy:
 *
 *   POST {DYNAMODB_ENDPOINT}/__local/streams/shards
 *   {"streamArn": "...", "region": "us-east-1", "split": 2}   (split: children per shard, 1 by default)
 *
 * Every open shard of the stream closes at its last record, with `split` children each;
 * the answer lists the stream's shards. From then on, for that stream:
 * - DescribeStream lists the lineage: closed shards with their `EndingSequenceNumber`,
 *   children with their `ParentShardId` (in pages of `Limit`, 100 by default, from
 *   `ExclusiveStartShardId`);
 * - GetShardIterator answers for each shard (TRIM_HORIZON from its first record; LATEST of
 *   a closed shard is its end; a sequence number outside the shard is a
 *   ValidationException);
 * - GetRecords gives a shard only its own records, and no `NextShardIterator` once a
 *   closed shard is read to its end. A page whose records all went to a sibling is read on
 *   past in the proxy, so that empty pages come only at the shard's current end.
 *
 * A stream never closed passes through untouched. The lineages are kept in
 * `.local/stream-shards.json` (a restarted proxy keeps them; `stack:up` forgets them with
 * a fresh DynamoDB Local).
 *
 * @module
 */

import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_DIR } from "../config.ts";
import { awsError, awsJsonAnswer } from "./json_answer.ts";
import {
  compareSeq,
  describedShards,
  endedIterator,
  holds,
  iteratorPosition,
  keyTextOf,
  type Lineage,
  newLineage,
  padSeq,
  rollOver,
  unwrapIterator,
  type VirtualShard,
  wrapIterator,
} from "./shard_lineage.ts";

/** Where the stack keeps its streams' lineages. */
export const STREAM_SHARDS_FILE = join(LOCAL_DIR, "stream-shards.json");
/** The control path. */
export const SHARDS_PATH = "/__local/streams/shards";
const TARGET = "DynamoDBStreams_20120810.";
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
  log?: (line: string) => void;
}

/** The lineages of the stack's streams, and the proxy hook that serves them. */
export class StreamShards {
  #lineages = new Map<string, Lineage>();

  constructor(private readonly options: StreamShardsOptions) {
    if (options.file && existsSync(options.file)) {
      const kept = JSON.parse(readFileSync(options.file, "utf8")) as Record<string, Lineage>;
      for (const [arn, lineage] of Object.entries(kept)) this.#lineages.set(arn, lineage);
    }
  }

  /** The lineage of `streamArn`, when it was ever closed. */
  lineage(streamArn: string): Lineage | undefined {
    return this.#lineages.get(streamArn);
  }

  /** Serves the control path and the lineages; everything else goes to `next`. */
  async handle(request: Request, next: Next): Promise<Response> {
    if (new URL(request.url).pathname === SHARDS_PATH) return await this.#control(request, next);
    const target = request.headers.get("x-amz-target") ?? "";
    const operation = target.startsWith(TARGET) ? target.slice(TARGET.length) : "";
    if (
      this.#lineages.size === 0 ||
      !["DescribeStream", "GetShardIterator", "GetRecords"].includes(operation)
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
    if (operation === "DescribeStream") return await this.#describe(request, body, lineage, next);
    return await this.#iterator(request, body, lineage, next);
  }

  async #describe(request: Request, body: Body, lineage: Lineage, next: Next) {
    const { ExclusiveStartShardId, Limit, ...rest } = body;
    const response = await next(withBody(request, JSON.stringify(rest)));
    if (!response.ok) return response;
    const answer = await response.json() as { StreamDescription: Body };
    const shards = describedShards(lineage);
    const from = ExclusiveStartShardId === undefined
      ? 0
      : shards.findIndex((s) => s.ShardId === ExclusiveStartShardId) + 1;
    const limit = typeof Limit === "number" ? Limit : 100;
    const page = shards.slice(from, from + limit);
    const { LastEvaluatedShardId: _, ...description } = answer.StreamDescription;
    return awsJsonAnswer(200, {
      StreamDescription: {
        ...description,
        Shards: page,
        ...(from + limit < shards.length ? { LastEvaluatedShardId: page.at(-1)!.ShardId } : {}),
      },
    }, response.headers);
  }

  async #iterator(request: Request, body: Body, lineage: Lineage, next: Next) {
    const streamArn = String(body.StreamArn);
    const shard = lineage.shards.find((s) => s.id === body.ShardId);
    if (!shard) {
      return awsError(
        "ResourceNotFoundException",
        `Requested resource not found: Shard: ${body.ShardId} in Stream: ${streamArn} not found`,
      );
    }
    const type = String(body.ShardIteratorType);
    const seq = typeof body.SequenceNumber === "string" ? body.SequenceNumber : undefined;
    if (seq !== undefined && /^\d+$/.test(seq) && !inside(shard, seq)) {
      return awsError(
        "ValidationException",
        `Invalid SequenceNumber ${seq} for shard ${shard.id}: it holds records after ` +
          `${shard.after}${shard.through ? ` through ${shard.through}` : ""}`,
      );
    }
    if (type === "LATEST" && shard.through !== undefined) {
      return awsJsonAnswer(200, { ShardIterator: endedIterator(streamArn, shard.id) });
    }
    const real: Body = { ...body, ShardId: lineage.realShardId };
    if (type === "TRIM_HORIZON" && shard.after !== "0") {
      Object.assign(real, {
        ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
        SequenceNumber: shard.after,
      });
    }
    let response = await next(withBody(request, JSON.stringify(real)));
    if (real.ShardIteratorType !== type && response.status === 400) {
      // The shard's start is trimmed: the real shard's horizon starts after the trim.
      const error = await response.clone().json() as { __type?: string };
      if (String(error.__type).endsWith("TrimmedDataAccessException")) {
        const horizon = { ...body, ShardId: lineage.realShardId };
        response = await next(withBody(request, JSON.stringify(horizon)));
      }
    }
    if (!response.ok) return response;
    const { ShardIterator } = await response.json() as { ShardIterator: string };
    return awsJsonAnswer(
      200,
      { ShardIterator: wrapIterator(ShardIterator, shard.id) },
      response.headers,
    );
  }

  async #records(request: Request, body: Body, next: Next): Promise<Response> {
    const given = String(body.ShardIterator ?? "");
    // DynamoDB Local's own iterator: one taken before its stream was first closed, of the
    // real shard, which is the lineage's first.
    const first = this.#lineages.get(given.split("|")[0])?.realShardId;
    const unwrapped = unwrapIterator(given) ??
      (first ? { real: given, shardId: first } : undefined);
    if (!unwrapped) return await next(withBody(request, JSON.stringify(body)));
    if ("ended" in unwrapped) return awsJsonAnswer(200, { Records: [] });
    const stream = unwrapped.real.split("|")[0];
    const shard = this.#lineages.get(stream)?.shards.find((s) => s.id === unwrapped.shardId);
    if (!shard) return awsError("ExpiredIteratorException", "Iterator expired: its shard is gone");
    let iterator = unwrapped.real;
    for (let page = 0;; page++) {
      const response = await next(
        withBody(request, JSON.stringify({ ...body, ShardIterator: iterator })),
      );
      if (!response.ok) return response;
      const answer = await response.json() as {
        Records?: StreamRecord[];
        NextShardIterator?: string;
      };
      const records = answer.Records ?? [];
      const mine = records.filter((r) =>
        holds(shard, r.dynamodb.SequenceNumber, keyTextOf(r.dynamodb.Keys))
      );
      const realNext = answer.NextShardIterator;
      const position = realNext ? iteratorPosition(realNext) : undefined;
      const ended = shard.through !== undefined && (
        records.some((r) => compareSeq(r.dynamodb.SequenceNumber, shard.through!) >= 0) ||
        (position !== undefined && compareSeq(position, shard.through) > 0)
      );
      const nextIterator = ended || !realNext ? undefined : wrapIterator(realNext, shard.id);
      if (
        mine.length > 0 || !nextIterator || records.length === 0 || page + 1 >= SIBLING_PAGES
      ) {
        return awsJsonAnswer(200, {
          Records: mine,
          ...(nextIterator ? { NextShardIterator: nextIterator } : {}),
        }, response.headers);
      }
      iterator = realNext!; // every record was a sibling's: read on
    }
  }

  async #control(request: Request, next: Next): Promise<Response> {
    if (request.method !== "POST") return new Response("POST only\n", { status: 405 });
    let body: { streamArn?: unknown; region?: unknown; split?: unknown };
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "the body is not JSON" }, { status: 400 });
    }
    const { streamArn, region, split = 1 } = body;
    if (typeof streamArn !== "string" || typeof region !== "string") {
      return Response.json(
        { error: "streamArn (a stream's ARN) and region (its table's) are required" },
        { status: 400 },
      );
    }
    const call = async (operation: string, input: Body) => {
      for (let attempt = 1;; attempt++) {
        const response = await next(this.#own(request.url, region, operation, input));
        if (response.ok) return await response.json();
        // DYNAMODB_FAULTS' error_rate fails stream requests too: asked again.
        if (response.status < 500 || attempt === 5) {
          throw new Error(`${operation} on ${streamArn}: ${await response.text()}`);
        }
      }
    };
    try {
      let lineage = this.#lineages.get(streamArn);
      if (!lineage) {
        const { StreamDescription } = await call("DescribeStream", { StreamArn: streamArn });
        const [real, ...more] = StreamDescription.Shards as VirtualShardListing[];
        if (!real || more.length > 0) throw new Error(`${streamArn} has not one shard`);
        lineage = newLineage(real.ShardId, real.SequenceNumberRange?.StartingSequenceNumber);
      }
      const { ShardIterator } = await call("GetShardIterator", {
        StreamArn: streamArn,
        ShardId: lineage.realShardId,
        ShardIteratorType: "LATEST",
      });
      const latest = iteratorPosition(ShardIterator);
      if (!latest) throw new Error(`DynamoDB Local's iterator has no position: ${ShardIterator}`);
      lineage = rollOver(lineage, padSeq(BigInt(latest) - 1n), Number(split));
      this.#lineages.set(streamArn, lineage);
      this.#save();
      this.options.log?.(
        `stream ${streamArn}: shards closed through ${
          padSeq(BigInt(latest) - 1n)
        }, ${split} child(ren) each`,
      );
      return Response.json({ streamArn, shards: describedShards(lineage) });
    } catch (error) {
      const status = error instanceof RangeError ? 409 : 502;
      return Response.json({ error: (error as Error).message }, { status });
    }
  }

  /** A request of the hook's own, in `region`'s database of the stack's key. */
  #own(url: string, region: string, operation: string, input: Body): Request {
    const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
    return new Request(new URL("/", url), {
      method: "POST",
      headers: {
        "x-amz-target": `${TARGET}${operation}`,
        "content-type": "application/x-amz-json-1.0",
        // Not signed: signatures are checked before this hook; DynamoDB Local reads the scope.
        authorization: `AWS4-HMAC-SHA256 Credential=${this.options.accessKeyId}/${day}/` +
          `${region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify(input),
    });
  }

  #save(): void {
    if (!this.options.file) return;
    // Whole or not at all: a proxy killed mid-write leaves the file it had.
    writeFileSync(`${this.options.file}.new`, JSON.stringify(Object.fromEntries(this.#lineages)));
    renameSync(`${this.options.file}.new`, this.options.file);
  }
}

interface VirtualShardListing {
  ShardId: string;
  SequenceNumberRange?: { StartingSequenceNumber?: string };
}

/** Whether a sequence number lies in `shard`'s range (past its start, up to its end). */
function inside(shard: VirtualShard, seq: string): boolean {
  return compareSeq(seq, shard.after) > 0 &&
    (shard.through === undefined || compareSeq(seq, shard.through) <= 0);
}

/** `request` with `text` as its body (its length left to be set again). */
function withBody(request: Request, text: string): Request {
  const headers = new Headers(request.headers);
  headers.delete("content-length");
  return new Request(request.url, { method: request.method, headers, body: text });
}
