/**
 * The streams in the live phase of `npm start` (live_changes.ts writes the changes):
 * every record of the live tables' streams delivered again, late and newest first, as a
 * retrying Lambda or a replay would; and the wait until the streams have drained, every
 * record applied by the webhook.
 *
 * @module
 */

import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { compareDecimal } from "../functions-shared/dynamo_numbers.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { deliver } from "../lambda/webhook_delivery.ts";
import { localDynamo } from "../local-stack/aws/source_tables.ts";
import { listShards, localStreams, readShard } from "../local-stack/aws/stream_reader.ts";
import type { StackEnv } from "../local-stack/stack_env.ts";
import { LIVE_TABLES, specsOf } from "./live_changes.ts";

/** A table's current stream and its shards, or none when its stream is off. */
async function streamOf(env: StackEnv, spec: TableSpec) {
  const { Table } = await localDynamo(env, spec.region).send(
    new DescribeTableCommand({ TableName: spec.sourceTable }),
  );
  const arn = Table?.LatestStreamArn;
  if (!arn) return undefined;
  const client = localStreams(env, spec.region);
  return { arn, client, shards: await listShards(client, arn) };
}

/** Tables' streams as {@link streamOf} found them, and when. */
export type StreamsSeen = Map<string, { at: number; stream: Awaited<ReturnType<typeof streamOf>> }>;

/**
 * How long a look at the streams reuses what {@link streamOf} found: a wait looks every
 * 250 ms, and DescribeStream answers 10 calls a second per account and region
 * (local-stack/aws/describe_limit.ts), shared with the stream poller; listing three tables'
 * shards at each look took 12 a second. A shard made within the last 2 s (a split) is
 * then seen up to 2 s late; a wait lists every table again before it ends.
 */
const STREAMS_SEEN_MS = 2_000;

/** {@link streamOf}, or what it found within {@link STREAMS_SEEN_MS} (kept in `seen`). */
async function streamSeen(env: StackEnv, spec: TableSpec, seen?: StreamsSeen) {
  const earlier = seen?.get(spec.targetTable);
  if (earlier && Date.now() - earlier.at < STREAMS_SEEN_MS) return earlier.stream;
  const stream = await streamOf(env, spec);
  seen?.set(spec.targetTable, { at: Date.now(), stream });
  return stream;
}

/** Whether sequence number `a` comes after `b` (both decimal digit strings). */
function after(a: string, b: string | undefined): boolean {
  return b === undefined || BigInt(a) > BigInt(b);
}

/**
 * Late and duplicated deliveries: every record the streams of `tables` hold (the live
 * phase's: a stream goes on after its table's load), sent to the webhook again, newest
 * first, as a retrying Lambda or a replay would. The delivery's failures (each answer
 * that is not a success, each request that got none) go to `logError`.
 */
export async function redeliver(
  env: StackEnv,
  tables: ReadonlySet<string> = LIVE_TABLES,
  logError: (line: string) => void = console.error,
): Promise<number> {
  // The tables' streams in parallel; within a stream, newest first, one request at a time.
  const counts = await Promise.all(
    specsOf(tables).map(async (spec) => {
      const stream = await streamOf(env, spec);
      if (!stream) return 0;
      const records = [];
      for (const shard of stream.shards) {
        records.push(...await readShard(stream.client, stream.arn, shard.ShardId!));
      }
      // Newest first by sequence number: the shards are listed in no chronological order.
      records.sort((a, b) =>
        compareDecimal(b.dynamodb!.SequenceNumber!, a.dynamodb!.SequenceNumber!)
      );
      let sent = 0;
      for (let i = 0; i < records.length; i += 25) {
        // Through the Lambda's own delivery: signed afresh each try, transient failures
        // (a 503 when no pooled connection came free in time) retried with backoff.
        const delivered = await deliver(
          `${env.FUNCTIONS_URL}/mmp-toledo-sync`,
          env.SYNC_WEBHOOK_SECRET,
          records.slice(i, i + 25),
          Date.now() + 60_000,
          () => {},
          logError,
        );
        if (delivered !== "delivered") {
          throw new Error(
            `redelivery to ${spec.targetTable} refused (the webhook's answers are logged above)`,
          );
        }
        sent += Math.min(25, records.length - i);
      }
      return sent;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** A table whose stream holds records the webhook has not committed yet. */
export interface Unapplied {
  table: string;
  records: number;
  firstSequenceNumber: string;
}

/**
 * The stream records of every table's current stream (of `tables` when given) that no
 * committed webhook batch has noted (sync.stream_records_applied_of, the lost-record
 * check's own lookup, 20261128001300_stream_progress.sql: the webhook notes each record of
 * a batch in the batch's own transaction, applied or skipped as older, so a noted record
 * is in Postgres for good); `confirmed` carries what earlier looks found noted, and
 * `seen` the streams they found.
 */
export async function unappliedRecords(
  env: StackEnv,
  sql: postgres.Sql,
  tables?: ReadonlySet<string>,
  confirmed: Map<string, string> = new Map(),
  seen?: StreamsSeen,
): Promise<Unapplied[]> {
  const found: Unapplied[] = [];
  await Promise.all(
    specsOf(tables).map(async (spec) => {
      const stream = await streamSeen(env, spec, seen);
      if (!stream) return;
      let records = 0;
      let first: string | undefined;
      for (const shard of stream.shards) {
        // `confirmed` remembers, per shard, the record up to which every one was found
        // noted (noted is for good), so that a wait reads only what came after it.
        const at = `${stream.arn}\u0000${shard.ShardId}`;
        const sequences =
          (await readShard(stream.client, stream.arn, shard.ShardId!, confirmed.get(at)))
            .map((record) => record.dynamodb!.SequenceNumber!);
        if (sequences.length === 0) continue;
        // A shard's records come in sequence order, and so do the ones missing.
        const [{ applied }] = await sql<{ applied: string[] }[]>`
          select sync.stream_records_applied_of(${stream.arn}, ${sequences}) as applied`;
        const noted = new Set(applied);
        const missing = sequences.filter((seq) => !noted.has(seq)).map((seq) => ({ seq }));
        const firstMissing = missing.length > 0 ? sequences.indexOf(missing[0].seq) : -1;
        const upTo = firstMissing === -1 ? sequences.length : firstMissing;
        if (upTo > 0) confirmed.set(at, sequences[upTo - 1]);
        records += missing.length;
        if (missing.length > 0 && (first === undefined || after(first, missing[0].seq))) {
          first = missing[0].seq;
        }
      }
      if (records > 0) {
        found.push({ table: spec.targetTable, records, firstSequenceNumber: first! });
      }
    }),
  );
  return found;
}

/**
 * Waits until the webhook has committed every record the streams (of `tables` when
 * given) hold (polled every
 * 250 ms: the signal, not a quiet spell). Throws after `timeoutMs`, naming each table
 * with the records still unapplied and where the poller's failures land.
 */
export async function drained(
  env: StackEnv,
  sql: postgres.Sql,
  timeoutMs = 120_000,
  tables?: ReadonlySet<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const confirmed = new Map<string, string>();
  const seen: StreamsSeen = new Map();
  for (;;) {
    let why: string;
    try {
      let pending = await unappliedRecords(env, sql, tables, confirmed, seen);
      if (pending.length === 0 && seen.size > 0) {
        // Nothing left in the shards as last listed: listed again before saying so, since a
        // shard may have been made since (STREAMS_SEEN_MS).
        seen.clear();
        pending = await unappliedRecords(env, sql, tables, confirmed, seen);
      }
      if (pending.length === 0) return;
      why = pending.map((p) =>
        `${p.table}: ${p.records} records not applied (first sequence number ${p.firstSequenceNumber})`
      ).join("; ");
    } catch (error) {
      // A failed look (an injected 500 past the SDK's retries) is looked at again.
      why = `reading the streams failed: ${(error as Error).message}`;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the streams did not drain in ${timeoutMs / 1000}s: ${why}; ` +
          "see .local/logs/stream_poller.log and .local/stream-failures/",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
