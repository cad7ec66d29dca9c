/**
 * The stack's stream poller: what Lambda's event source mappings do on AWS. It finds
 * the streams of the nine source tables in DynamoDB Local (both regions), reads every
 * shard in order (a child after its parent), and hands the records to the real Lambda
 * handler (lambda/stream_forwarder.ts) through the event source mapping emulation,
 * which delivers them to the local webhook. Positions are checkpointed in
 * `.local/stream-poller.json`; what exhausts its retries goes to the on-failure
 * destination, a JSON file per batch in `.local/stream-failures/`.
 *
 * Settings (environment, with the seed report's defaults): STREAM_BATCH_SIZE (10),
 * STREAM_MAX_RETRY_ATTEMPTS (-1: until the records expire), STREAM_BISECT_ON_ERROR (true).
 *
 * Run by `stack:up`; not meant to be started by hand.
 *
 * @module
 */

import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { TABLES } from "../functions-shared/table_registry.ts";
import { handler } from "../lambda/stream_forwarder.ts";
import { LOCAL_DIR } from "./config.ts";
import { EventSourceMapping, type StreamFailureMessage } from "./event_source_mapping.ts";
import { localDynamo } from "./source_tables.ts";
import { readStackEnv } from "./stack_env.ts";
import { listShards, localStreams, readRecords, shardIterator } from "./stream_reader.ts";

const STATE_FILE = join(LOCAL_DIR, "stream-poller.json");
/** Where the on-failure destination's messages land. */
export const FAILURE_DIR = join(LOCAL_DIR, "stream-failures");
const POLL_MS = 250;
const DISCOVER_MS = 1_000;

/** Checkpoints: stream ARN -> shard id -> last sequence number handled ("done" once closed and read). */
type State = Record<string, Record<string, string>>;

function loadState(): State {
  return existsSync(STATE_FILE) ? JSON.parse(readFileSync(STATE_FILE, "utf8")) : {};
}

function saveState(state: State): void {
  writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(state, null, 1));
  renameSync(`${STATE_FILE}.tmp`, STATE_FILE);
}

async function writeFailure(message: StreamFailureMessage): Promise<void> {
  mkdirSync(FAILURE_DIR, { recursive: true });
  const info = message.DDBStreamBatchInfo;
  const file = join(FAILURE_DIR, `${Date.now()}-${info.shardId}-${info.startSequenceNumber}.json`);
  await Deno.writeTextFile(file, JSON.stringify(message, null, 2));
  console.error(
    `batch ${info.startSequenceNumber}..${info.endSequenceNumber} of ${info.shardId} went to the on-failure destination: ${file}`,
  );
}

if (import.meta.main) {
  const env = readStackEnv();
  process.env.WEBHOOK_URL = `${env.FUNCTIONS_URL}/mmp-toledo-sync`;
  process.env.SYNC_WEBHOOK_SECRET = env.SYNC_WEBHOOK_SECRET;
  const mapping = new EventSourceMapping({
    handler,
    batchSize: Number(Deno.env.get("STREAM_BATCH_SIZE") ?? 10),
    maxRetryAttempts: Number(Deno.env.get("STREAM_MAX_RETRY_ATTEMPTS") ?? -1),
    bisectBatchOnFunctionError: (Deno.env.get("STREAM_BISECT_ON_ERROR") ?? "true") === "true",
    functionTimeoutMs: 60_000,
    retryBaseDelayMs: 500,
    onFailure: writeFailure,
  });
  const state = loadState();
  const running = new Set<string>();

  const pollShard = async (region: string, streamArn: string, shardId: string) => {
    const client = localStreams(env, region);
    const shards = (state[streamArn] ??= {});
    let iterator: string | undefined;
    while (shards[shardId] !== "done") {
      try {
        iterator ??= await shardIterator(
          client,
          streamArn,
          shardId,
          shards[shardId] ? { after: shards[shardId] } : "oldest",
        );
        if (!iterator) break;
        const { records, next } = await readRecords(client, streamArn, iterator);
        if (records.length > 0) {
          await mapping.process(streamArn, shardId, records);
          shards[shardId] = records.at(-1)!.dynamodb!.SequenceNumber!;
          saveState(state);
        }
        iterator = next;
        if (!next) {
          shards[shardId] = "done";
          saveState(state);
        } else if (records.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      } catch (error) {
        const name = (error as Error).name;
        if (name === "ResourceNotFoundException") break; // the table (and stream) is gone
        // DynamoDB Local sometimes refuses an iterator of a long-idle shard; a fresh one
        // from the checkpoint reads on without losing anything.
        const iteratorProblem = name === "ExpiredIteratorException" ||
          name === "TrimmedDataAccessException";
        console.error(`${streamArn} ${shardId}: ${name}: ${(error as Error).message}; retrying`);
        iterator = undefined;
        await new Promise((resolve) => setTimeout(resolve, iteratorProblem ? 100 : 2_000));
      }
    }
    running.delete(`${streamArn} ${shardId}`);
  };

  console.log("stream poller running");
  while (true) {
    for (const spec of TABLES) {
      try {
        const { Table } = await localDynamo(env, spec.region).send(
          new DescribeTableCommand({ TableName: spec.sourceTable }),
        );
        const streamArn = Table?.LatestStreamArn;
        if (!streamArn) continue;
        const shards = await listShards(localStreams(env, spec.region), streamArn);
        const done = state[streamArn] ?? {};
        for (const shard of shards) {
          const id = `${streamArn} ${shard.ShardId}`;
          const parentPending = shard.ParentShardId &&
            shards.some((s) => s.ShardId === shard.ParentShardId) &&
            done[shard.ParentShardId] !== "done";
          if (running.has(id) || done[shard.ShardId!] === "done" || parentPending) continue;
          running.add(id);
          pollShard(spec.region, streamArn, shard.ShardId!);
        }
      } catch (error) {
        if ((error as Error).name !== "ResourceNotFoundException") {
          console.error(`${spec.sourceTable}: ${(error as Error).message}`);
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, DISCOVER_MS));
  }
}
