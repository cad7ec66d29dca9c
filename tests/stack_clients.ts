/**
 * Clients of the local stack for end-to-end tests: Postgres as `postgres` (not a superuser,
 * as hosted), DynamoDB Local per region (the AWS SDK's, and the functions' own), and the
 * Edge Functions by name. All read `.local/stack.env`.
 *
 * @module
 */

import postgres from "postgres";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { awsClientConfig } from "../functions-shared/dynamo_client.ts";
import { DynamoClient } from "../functions-shared/dynamo_http.ts";
import { NO_DELAY } from "../functions-shared/pg_socket.ts";
import { readStackEnv, type StackEnv, stackEnvReader } from "../local-stack/stack_env.ts";
import { parseFaults } from "../local-stack/aws/faults.ts";
import { TRIM_PATH } from "../local-stack/aws/stream_trim.ts";
import { GAPS_PATH } from "../local-stack/aws/stream_gaps.ts";
import { SHARDS_PATH } from "../local-stack/aws/stream_shards_control.ts";
import { asAdminUrl } from "../local-stack/supabase/postgres_cluster.ts";

/** The stack's settings. */
export const stack: StackEnv = readStackEnv();

/** How old an eventually consistent read may be on this stack (its proxy's `stale_ms`). */
export function staleReadMs(): number {
  return parseFaults(stack.DYNAMODB_FAULTS).staleMs;
}

/** A Postgres connection pool; call `end()` when done. */
export function connectDb(): postgres.Sql {
  return postgres(stack.DATABASE_URL, { max: 4, onnotice: () => {}, ...NO_DELAY });
}

/**
 * The `application_name` of {@link connectAdminDb}'s sessions: the bench's stall watch
 * leaves them out (tests/bench_stall_watch.ts). Not the role: pg_net's worker, a path of
 * the product, logs in as the same superuser.
 */
export const ADMIN_CLIENT_NAME = "superuser client of the tests and benches";

/**
 * A connection as the cluster's superuser (`ADMIN_ROLE`), for what only the platform may
 * do and only measurements need: server-side `COPY` to and from files, `CHECKPOINT`.
 * Never what a test of the product runs as: that is `connectDb`'s `postgres`.
 */
export function connectAdminDb(max = 1): postgres.Sql {
  return postgres(asAdminUrl(stack.DATABASE_URL), {
    max,
    onnotice: () => {},
    connection: { application_name: ADMIN_CLIENT_NAME },
    ...NO_DELAY,
  });
}

const awsOptions = (region: string) => awsClientConfig(stackEnvReader(stack), region);

/** A DynamoDB client of DynamoDB Local in `region`. */
export function dynamo(region = stack.AWS_REGION): DynamoDBClient {
  return new DynamoDBClient(awsOptions(region));
}

/**
 * The functions' own client (functions-shared/dynamo_http.ts) of DynamoDB Local in
 * `region`: what to hand code of functions-shared that reads DynamoDB.
 */
export function functionsDynamo(region = stack.AWS_REGION): DynamoClient {
  return new DynamoClient(awsOptions(region));
}

/**
 * A DynamoDB Streams client of DynamoDB Local in `region` (the functions' client); with
 * `maxAttempts` 1, one that does not retry (to see a throttle).
 */
export function dynamoStreams(region = stack.AWS_REGION, maxAttempts?: number): DynamoClient {
  if (maxAttempts === undefined) return functionsDynamo(region);
  return new DynamoClient({ ...awsOptions(region), maxAttempts });
}

/** Calls an Edge Function through the stack's gateway. */
export async function callFunction(name: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(`${stack.FUNCTIONS_URL}/${name}`, init);
}

/** An isolate alive now, as the gateway's `/_stack/health` lists it. */
export interface LiveIsolate {
  id: number;
  requests: number;
  cpu_ms: number;
  /** Why it was retired (e.g. "retired: cpu soft limit"), or null while it takes requests. */
  retired: string | null;
}

/** The isolates alive now, by function, from the gateway's `/_stack/health`. */
export async function liveIsolates(): Promise<Map<string, LiveIsolate[]>> {
  const response = await fetch(new URL("/_stack/health", stack.FUNCTIONS_URL));
  const body = await response.json() as { functions: { name: string; isolates: LiveIsolate[] }[] };
  return new Map(body.functions.map((f) => [f.name, f.isolates]));
}

/** The service role key as an Authorization header. */
export function serviceRoleHeaders(): Record<string, string> {
  return {
    authorization: `Bearer ${stack.SUPABASE_SERVICE_ROLE_KEY}`,
    "content-type": "application/json",
  };
}

export { eventually } from "./eventually.ts";

/** A shard of a stream as DescribeStream lists it. */
export interface ListedShard {
  ShardId: string;
  ParentShardId?: string;
  SequenceNumberRange: { StartingSequenceNumber?: string; EndingSequenceNumber?: string };
}

/**
 * Closes the open shards of a stream of the stack, each with `split` children, as AWS
 * closes and splits them (local-stack/aws/stream_shards.ts); answers the stream's shards.
 */
export async function closeStreamShards(
  streamArn: string,
  split = 1,
  region = "us-east-1",
): Promise<ListedShard[]> {
  const response = await fetch(`${stack.DYNAMODB_ENDPOINT}${SHARDS_PATH}`, {
    method: "POST",
    body: JSON.stringify({ streamArn, region, split }),
  });
  const body = await response.json();
  if (response.status !== 200) {
    throw new Error(
      `closing the shards of ${streamArn}: ${response.status} ${JSON.stringify(body)}`,
    );
  }
  return body.shards;
}

/**
 * Trims a stream of the stack through `seq` (null: untrims), as AWS does after 24 hours
 * (local-stack/aws/stream_trim.ts).
 */
export async function trimStream(streamArn: string, seq: string | null): Promise<void> {
  const response = await fetch(`${stack.DYNAMODB_ENDPOINT}${TRIM_PATH}`, {
    method: "POST",
    body: JSON.stringify({ streamArn, throughSequenceNumber: seq }),
  });
  if (response.status !== 200) {
    throw new Error(`trimming ${streamArn}: ${response.status} ${await response.text()}`);
  }
}

/**
 * Makes each read of `streamArn` answer `emptyPages` empty pages first (0: none), as AWS
 * may in the middle of a shard (local-stack/aws/stream_gaps.ts).
 */
export async function gapStream(streamArn: string, emptyPages: number): Promise<void> {
  const response = await fetch(`${stack.DYNAMODB_ENDPOINT}${GAPS_PATH}`, {
    method: "POST",
    body: JSON.stringify({ streamArn, emptyPages }),
  });
  if (response.status !== 200) {
    throw new Error(`gapping ${streamArn}: ${response.status} ${await response.text()}`);
  }
}

/** Posts a body to the webhook, signed with the stack's secret unless `headers` override. */
export async function postWebhook(
  body: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const { signWebhook } = await import("../functions-shared/webhook_signing.ts");
  return await callFunction("mmp-toledo-sync", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...signWebhook(stack.SYNC_WEBHOOK_SECRET, body),
      ...headers,
    },
    body,
  });
}

/** A DynamoDB Streams record as Lambda delivers it, for table `table` in `region`. */
export function streamRecord(
  table: string,
  eventName: "INSERT" | "MODIFY" | "REMOVE",
  keys: Record<string, unknown>,
  newImage: Record<string, unknown> | undefined,
  sequenceNumber: string,
  region = "us-east-1",
  approximateCreationDateTime = Math.floor(Date.now() / 1000),
): Record<string, unknown> {
  return {
    eventID: crypto.randomUUID(),
    eventName,
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: region,
    eventSourceARN:
      `arn:aws:dynamodb:${region}:000000000000:table/${table}/stream/2026-02-06T00:00:00.000`,
    dynamodb: {
      ApproximateCreationDateTime: approximateCreationDateTime,
      Keys: keys,
      ...(newImage ? { NewImage: newImage } : {}),
      SequenceNumber: sequenceNumber,
      SizeBytes: 100,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

/**
 * `shards` with each parent before its children (DescribeStream lists them in no
 * chronological order: local-stack/aws/shard_order.ts), so that records read shard
 * after shard come in their lineage's order.
 */
function parentsFirst<S extends { ShardId?: string; ParentShardId?: string }>(shards: S[]): S[] {
  const ordered: S[] = [];
  const placed = new Set<string | undefined>();
  const listed = new Set(shards.map((s) => s.ShardId));
  while (ordered.length < shards.length) {
    for (const shard of shards) {
      if (placed.has(shard.ShardId)) continue;
      if (
        shard.ParentShardId && listed.has(shard.ParentShardId) && !placed.has(shard.ParentShardId)
      ) {
        continue;
      }
      ordered.push(shard);
      placed.add(shard.ShardId);
    }
  }
  return ordered;
}

/**
 * The records that a source table's stream holds whose text contains `marker`, in
 * Lambda's form, with the stream's ARN and the shards they came from.
 */
export async function streamRecordsContaining(target: string, marker: string) {
  const { byTargetTable } = await import("../functions-shared/table_registry.ts");
  const { listShards, readShard } = await import(
    "../local-stack/aws/stream_reader.ts"
  );
  const { DescribeTableCommand } = await import("@aws-sdk/client-dynamodb");
  const spec = byTargetTable(target)!;
  const { Table } = await dynamo(spec.region).send(
    new DescribeTableCommand({ TableName: spec.sourceTable }),
  );
  const streamArn = Table!.LatestStreamArn!;
  const streams = dynamoStreams(spec.region);
  const shards = parentsFirst(await listShards(streams, streamArn));
  const found: {
    shardId: string;
    record: Record<string, unknown> & { dynamodb?: { SequenceNumber?: string } };
  }[] = [];
  for (const shard of shards) {
    for (const record of await readShard(streams, streamArn, shard.ShardId!)) {
      if (JSON.stringify(record).includes(marker)) found.push({ shardId: shard.ShardId!, record });
    }
  }
  return { streamArn, shards, found };
}
