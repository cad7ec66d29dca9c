/**
 * Moves the stream poller's checkpoints to the current end of every source table's
 * stream, forgetting streams that are gone. For when the records in the streams are
 * already in Postgres by other means (a bulk load followed by a backfill) and should
 * not be delivered again. Run it while the poller is stopped.
 *
 * @module
 */

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { TABLES } from "../../functions-shared/table_registry.ts";
import { LOCAL_DIR } from "../config.ts";
import { localDynamo } from "./source_tables.ts";
import type { StackEnv } from "../stack_env.ts";
import { listShards, localStreams, readShard } from "./stream_reader.ts";

/** The poller's checkpoint file. */
export const POLLER_STATE_FILE = join(LOCAL_DIR, "stream-poller.json");

/** Sets every shard's checkpoint to its last record; returns how many records were skipped. */
export async function skipStreamsToEnd(env: StackEnv): Promise<number> {
  const old = existsSync(POLLER_STATE_FILE)
    ? JSON.parse(readFileSync(POLLER_STATE_FILE, "utf8")) as Record<string, Record<string, string>>
    : {};
  const state: Record<string, Record<string, string>> = {};
  let skipped = 0;
  for (const spec of TABLES) {
    const { Table } = await localDynamo(env, spec.region).send(
      new DescribeTableCommand({ TableName: spec.sourceTable }),
    );
    const arn = Table?.LatestStreamArn;
    if (!arn) continue;
    const client = localStreams(env, spec.region);
    state[arn] = {};
    for (const shard of await listShards(client, arn)) {
      let last = old[arn]?.[shard.ShardId!];
      if (last === "done") {
        state[arn][shard.ShardId!] = last;
        continue;
      }
      const records = await readShard(client, arn, shard.ShardId!, last);
      skipped += records.length;
      last = records.at(-1)?.dynamodb?.SequenceNumber ?? last;
      if (last) state[arn][shard.ShardId!] = last;
    }
  }
  writeFileSync(POLLER_STATE_FILE, JSON.stringify(state, null, 1));
  return skipped;
}
