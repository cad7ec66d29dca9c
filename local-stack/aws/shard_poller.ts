/**
 * The stream poller's reading of shards (stream_poller.ts finds the streams): each
 * stream's shards listed now and then, every shard read in order from its checkpoint (a
 * child once its parent is read to its end), its records handed to the event source
 * mapping, and the checkpoints kept in `.local/stream-poller.json`. Records lost (a
 * checkpoint past the stream's retention, a shard gone before it was read to its end)
 * are said in the log only, and reading goes on from the oldest record, as Lambda's
 * mapping does.
 *
 * @module
 */

import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { DynamoClient } from "../../functions-shared/dynamo_http.ts";
import { compareDecimal } from "../../functions-shared/dynamo_numbers.ts";
import { tableNameFromArn } from "../../functions-shared/table_registry.ts";
import type { EventSourceMapping } from "./event_source_mapping.ts";
import { POLLER_STATE_FILE as STATE_FILE } from "./stream_positions.ts";
import { listShards, readRecords, shardIterator } from "./stream_reader.ts";
import { IDLE_REFRESH_MS, type IdlePoll, type StreamWatch } from "./stream_watch.ts";

const POLL_MS = 250;
/**
 * How often a stream's shards are listed (DescribeStream) while none of its shards has
 * ended: AWS answers DescribeStream at most 10 times a second per account and region
 * (local-stack/aws/describe_limit.ts), shared with the lost-record check and everything
 * else, and listing the seven us-east-1 streams every second took 7 of the 10. AWS does
 * not document how often Lambda's mapping lists a stream's shards; the Kinesis Client
 * Library's default is once a minute (`shardSyncIntervalMillis`) and when a shard ends.
 * Here the same: every minute, and at once after a shard the poller reads has ended (its
 * children are then read without waiting). (Every 10 s, the nine streams' listings cost
 * the poller, the proxy and DynamoDB Local about 4 ms of CPU a second, idle or not.) The
 * table's stream itself is looked up every second until its mapping is made, then every
 * 10 s (StreamMappings).
 */
const DESCRIBE_MS = 60_000;

/** Checkpoints: stream ARN -> shard id -> last sequence number handled ("done" once closed and read). */
type State = Record<string, Record<string, string>>;

function loadState(): State {
  return existsSync(STATE_FILE) ? JSON.parse(readFileSync(STATE_FILE, "utf8")) : {};
}

function saveState(state: State): void {
  writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(state, null, 1));
  renameSync(`${STATE_FILE}.tmp`, STATE_FILE);
}

/** What the shards' reading needs. */
export interface ShardPollerDeps {
  /** One client per region, for DynamoDB Streams. */
  dynamoIn: (region: string) => DynamoClient;
  mapping: EventSourceMapping;
  /** What the proxy has written, so that the polls of an idle shard are left out. */
  watch: StreamWatch;
}

/**
 * The shards' reading: `visitStream` lists a stream's shards when due and starts reading
 * each that waits; `state` holds the checkpoints, written by `save`.
 */
export function shardPoller(deps: ShardPollerDeps) {
  const { dynamoIn, mapping, watch } = deps;
  const state = loadState();
  const running = new Set<string>();
  /** How many times a shard's reading has ended, per stream (read to its end, or stopped). */
  const shardsEnded = new Map<string, number>();
  /** When each stream's shards were last listed, and how many had ended by then. */
  const listed = new Map<string, { at: number; ended: number }>();

  /** Records were lost: said in the log only (see the module's comment). */
  const lost = (sourceTable: string, what: string) => {
    console.error(
      `${sourceTable}: ${what}; reading on from the oldest record (stream-check will find the loss)`,
    );
  };

  /**
   * The wait of a shard whose poll is left out: until the watch changes or the poll is
   * due again whatever happened (stream_watch.ts), then on to the next of the shard's
   * ticks, POLL_MS apart from its last poll, as if each tick had been looked at. (Each
   * tick of each idle shard looked at on a timer: about 7 ms of the poller's CPU a second.)
   */
  const leftOut = async (idle: IdlePoll) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const due = idle.sentAt + IDLE_REFRESH_MS - Date.now();
    await Promise.race([
      watch.nextChange(),
      new Promise((resolve) => timer = setTimeout(resolve, Math.max(0, due))),
    ]);
    clearTimeout(timer);
    const sinceTick = (Date.now() - idle.sentAt) % POLL_MS;
    if (sinceTick > 0) await new Promise((resolve) => setTimeout(resolve, POLL_MS - sinceTick));
  };

  const pollShard = async (region: string, streamArn: string, shardId: string) => {
    const client = dynamoIn(region);
    const shards = (state[streamArn] ??= {});
    const table = tableNameFromArn(streamArn)!;
    let iterator: string | undefined;
    /** The last poll, when it came back empty (stream_watch.ts). */
    let idle: IdlePoll | undefined;
    while (shards[shardId] !== "done") {
      if (iterator && idle && watch.mayLeaveOut(table, idle, Date.now())) {
        await leftOut(idle);
        continue;
      }
      idle = undefined;
      let asking = "GetRecords";
      try {
        if (!iterator) {
          asking = "GetShardIterator";
          const checkpoint = shards[shardId];
          iterator = await shardIterator(
            client,
            streamArn,
            shardId,
            checkpoint ? { after: checkpoint } : "oldest",
          );
          asking = "GetRecords";
        }
        if (!iterator) break;
        const mark = watch.mark(table);
        const sentAt = Date.now();
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
          if (mark !== undefined) idle = { mark, sentAt };
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      } catch (error) {
        const name = (error as Error).name;
        if (name === "ResourceNotFoundException") break; // the stream is gone; discovery decides
        if (name === "TrimmedDataAccessException" && asking === "GetShardIterator") {
          // The checkpoint itself is past the retention: what followed it is lost.
          lost(
            tableNameFromArn(streamArn)!,
            `records of ${shardId} after ${shards[shardId]} passed the stream's retention unread`,
          );
          delete shards[shardId];
          saveState(state);
        } else if (name === "TrimmedDataAccessException" && !shards[shardId]) {
          // An iterator from the shard's start, taken before a trim: the next one starts
          // after what was trimmed, unread.
          lost(
            tableNameFromArn(streamArn)!,
            `records of ${shardId} were trimmed before it read them`,
          );
        }
        // Otherwise a fresh iterator from the checkpoint: DynamoDB Local sometimes refuses
        // the iterator of a long-idle shard (expired), and an iterator taken before a trim
        // at a record after the checkpoint is refused there, as it is later at
        // GetShardIterator if the checkpoint itself was trimmed.
        const iteratorProblem = name === "ExpiredIteratorException" ||
          name === "TrimmedDataAccessException";
        console.error(`${streamArn} ${shardId}: ${name}: ${(error as Error).message}; retrying`);
        iterator = undefined;
        await new Promise((resolve) => setTimeout(resolve, iteratorProblem ? 100 : 2_000));
      }
    }
    running.delete(`${streamArn} ${shardId}`);
    // The shard was read to its end (its children wait), or its reading stopped short (the
    // stream gone, no iterator): either way the stream's shards are listed again at once.
    shardsEnded.set(streamArn, (shardsEnded.get(streamArn) ?? 0) + 1);
  };

  /** Finds lost records of one stream, then polls its shards that wait (parents first). */
  const visitStream = async (region: string, sourceTable: string, streamArn: string) => {
    const ended = shardsEnded.get(streamArn) ?? 0;
    const last = listed.get(streamArn);
    if (last && Date.now() - last.at < DESCRIBE_MS && last.ended === ended) return;
    const shards = await listShards(dynamoIn(region), streamArn);
    listed.set(streamArn, { at: Date.now(), ended });
    const known = (state[streamArn] ??= {});
    for (const shard of shards) {
      const checkpoint = known[shard.ShardId!];
      const oldest = shard.SequenceNumberRange?.StartingSequenceNumber;
      if (
        checkpoint && checkpoint !== "done" && oldest && compareDecimal(oldest, checkpoint) > 0 &&
        !running.has(`${streamArn} ${shard.ShardId}`)
      ) {
        lost(
          sourceTable,
          `records of ${shard.ShardId} after ${checkpoint} passed the stream's retention unread (oldest now ${oldest})`,
        );
        delete known[shard.ShardId!];
        saveState(state);
      }
    }
    for (const [shardId, checkpoint] of Object.entries(known)) {
      if (checkpoint !== "done" && !shards.some((s) => s.ShardId === shardId)) {
        lost(sourceTable, `shard ${shardId} expired before it was read to its end`);
        delete known[shardId];
        saveState(state);
      }
    }
    for (const shard of shards) {
      const id = `${streamArn} ${shard.ShardId}`;
      const parentPending = shard.ParentShardId &&
        shards.some((s) => s.ShardId === shard.ParentShardId) &&
        known[shard.ParentShardId] !== "done";
      if (running.has(id) || known[shard.ShardId!] === "done" || parentPending) continue;
      running.add(id);
      pollShard(region, streamArn, shard.ShardId!);
    }
  };

  return { state, save: () => saveState(state), visitStream };
}
