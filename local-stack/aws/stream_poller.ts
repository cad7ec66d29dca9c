/**
 * The stack's stream poller: what Lambda's event source mappings do on AWS. It finds
 * the streams of the nine source tables in DynamoDB Local (both regions), reads every
 * shard in order (a child after its parent), and hands the records to the real Lambda
 * handler (lambda/stream_forwarder.ts) through the event source mapping emulation,
 * which delivers them to the local webhook. Positions are checkpointed in
 * `.local/stream-poller.json`; what exhausts its retries goes to the on-failure
 * destination, a JSON file per batch in `.local/stream-failures/`.
 *
 * Each table's mapping reads the stream it was made for, as on AWS ({@link StreamMappings}):
 * a replaced stream is not followed until the poller starts again.
 *
 * When records are lost (a checkpoint older than what the shard still holds, a shard or
 * a whole stream gone before it was read to its end), it says so in its log and reads on
 * from the oldest record, as Lambda's mapping does: nothing tells the database. Finding
 * lost records and healing their table is `stream-check`'s work, on AWS as here
 * (docs/sync-semantics.md, "Lost stream records"); a stand-in that marked the table
 * stale itself would heal locally what production only heals after the next check.
 *
 * Settings (environment; the defaults are the deployed mappings', DEPLOYED_MAPPING):
 * STREAM_BATCH_SIZE (10), STREAM_MAX_RETRY_ATTEMPTS (-1, as deployed: until the records pass their maximum age),
 * STREAM_MAX_RECORD_AGE_S (3600; -1: never), STREAM_BISECT_ON_ERROR (true),
 * STREAM_RESERVED_CONCURRENCY (none: invocations at once of a region's function).
 *
 * Run by `stack:up`; not meant to be started by hand.
 *
 * @module
 */

import { DescribeTableCommand } from "../../functions-shared/dynamo_commands.ts";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { awsClientConfig, perRegion } from "../../functions-shared/dynamo_client.ts";
import { DynamoClient } from "../../functions-shared/dynamo_http.ts";
import { compareDecimal } from "../../functions-shared/dynamo_numbers.ts";
import { tableNameFromArn, TABLES } from "../../functions-shared/table_registry.ts";
import { LOCAL_DIR } from "../config.ts";
import { EventSourceMapping, type StreamFailureMessage } from "./event_source_mapping.ts";
import { DEPLOYED_MAPPING, mappingSetting } from "./mapping_settings.ts";
import { POLLER_STATE_FILE } from "./stream_positions.ts";
import { LambdaEnvironments, type LambdaFunction } from "./lambda_environments.ts";
import { StreamMappings } from "./stream_mappings.ts";
import { readStackEnv, stackEnvReader } from "../stack_env.ts";
import { listShards, readRecords, shardIterator } from "./stream_reader.ts";
import { IDLE_REFRESH_MS, type IdlePoll, MAPPING_HEADER, proxyWatch } from "./stream_watch.ts";

const STATE_FILE = POLLER_STATE_FILE;
/** Where the on-failure destination's messages land. */
export const FAILURE_DIR = join(LOCAL_DIR, "stream-failures");
const POLL_MS = 250;
const DISCOVER_MS = 1_000;
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

/**
 * STREAM_RESERVED_CONCURRENCY: a positive integer, or -1 for no limit; unset, the deployed
 * value. Anything else stops the poller with one line saying why.
 */
export function reservedConcurrency(text: string | undefined): number | undefined {
  if (text === undefined) return DEPLOYED_MAPPING.reservedConcurrency;
  if (text.trim() === "-1") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || text.trim() === "") {
    throw new Error(
      `STREAM_RESERVED_CONCURRENCY must be a positive integer (invocations at once of a region's function) or -1 (no limit), not ${
        JSON.stringify(text)
      }`,
    );
  }
  return n;
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

/** The value of `read`, or, when a setting is wrong, its one line and exit code 1. */
function setting<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    console.error(`stream poller: ${(error as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) {
  const env = readStackEnv();
  const concurrency = setting(() =>
    reservedConcurrency(Deno.env.get("STREAM_RESERVED_CONCURRENCY"))
  );
  // One client per region for the poller's life (a client per call leaks its sockets),
  // for DynamoDB and its Streams alike (dynamo_http.ts). Its reads carry the mapping's
  // mark: the proxy counts it as reading a shard whose polls it leaves out
  // (stream_watch.ts).
  // What the proxy has written, so that the polls of an idle shard are left out.
  const watch = proxyWatch(env.DYNAMODB_ENDPOINT);
  watch.run();
  const dynamoIn = perRegion((region) =>
    new DynamoClient({
      ...awsClientConfig(stackEnvReader(env), region),
      // Read at each request (the client spreads it): the proxy's current instance.
      headers: {
        get [MAPPING_HEADER]() {
          return watch.instance ?? "";
        },
      },
    })
  );
  process.env.WEBHOOK_URL = `${env.FUNCTIONS_URL}/mmp-toledo-sync`;
  process.env.SYNC_WEBHOOK_SECRET = env.SYNC_WEBHOOK_SECRET;
  // The Lambda's module in execution environments of its own: a timed-out invocation is
  // stopped, as Lambda stops it. One function per region, as deployed
  // (infrastructure/terraform): each with its own warm environments and their caches.
  const forwarder = new URL("../../lambda/stream_forwarder.ts", import.meta.url);
  const lambdas = new Map<string, LambdaEnvironments>();
  const invoke: LambdaFunction = (event, timeoutMs) => {
    const table = tableNameFromArn(String(event.Records?.[0]?.eventSourceARN ?? ""));
    const region = TABLES.find((t) => t.sourceTable === table)?.region ?? "";
    let lambda = lambdas.get(region);
    if (!lambda) lambdas.set(region, lambda = new LambdaEnvironments(forwarder));
    return lambda.invoke(event, timeoutMs);
  };
  // A mapping setting from the environment, checked (mappingSetting), else the deployed one.
  const fromEnv = (
    name: string,
    deployed: number,
    range: Parameters<typeof mappingSetting>[3],
  ) => setting(() => mappingSetting(name, Deno.env.get(name), deployed, range));
  const mapping = new EventSourceMapping({
    invoke,
    batchSize: fromEnv("STREAM_BATCH_SIZE", DEPLOYED_MAPPING.batchSize, { min: 1, max: 10_000 }),
    maxRetryAttempts: fromEnv("STREAM_MAX_RETRY_ATTEMPTS", DEPLOYED_MAPPING.maxRetryAttempts, {
      min: 0,
      max: 10_000,
      allowNone: true,
    }),
    maxRecordAgeS: fromEnv("STREAM_MAX_RECORD_AGE_S", DEPLOYED_MAPPING.maxRecordAgeS, {
      min: 60,
      max: 604_800,
      allowNone: true,
    }),
    bisectBatchOnFunctionError: (Deno.env.get("STREAM_BISECT_ON_ERROR") ??
      String(DEPLOYED_MAPPING.bisectBatchOnFunctionError)) === "true",
    functionTimeoutMs: DEPLOYED_MAPPING.functionTimeoutMs,
    reservedConcurrency: concurrency,
    retryBaseDelayMs: 500,
    onFailure: writeFailure,
  });
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

  const mappings = new StreamMappings();
  /** Mapped streams found gone (said once each). */
  const gone = new Set<string>();
  console.log("stream poller running");
  while (true) {
    for (const spec of TABLES) {
      try {
        let mine = mappings.mapped(spec.sourceTable);
        if (mappings.lookUpDue(spec.sourceTable, Date.now())) {
          const { Table } = await dynamoIn(spec.region).send(
            new DescribeTableCommand({ TableName: spec.sourceTable }),
          );
          mappings.lookedUp(spec.sourceTable, Date.now());
          const found = mappings.streamOf(
            spec.sourceTable,
            Table?.LatestStreamArn,
            Table?.StreamSpecification?.StreamEnabled === true,
          );
          mine = found.arn;
          if (found.news) console.error(found.news);
        }
        // Checkpoints of another stream of the table, from before the poller started
        // again: that stream's mapping is gone (Terraform replaced it), with what it had
        // not delivered. Only once a mapping is made for the table's stream: with the
        // stream off, Terraform refuses the table and the old mapping stays.
        const older = mine === undefined
          ? []
          : Object.keys(state).filter((arn) =>
            arn !== mine && tableNameFromArn(arn) === spec.sourceTable &&
            Object.values(state[arn]).some((checkpoint) => checkpoint !== "done")
          );
        for (const arn of older) {
          console.error(
            `${spec.sourceTable}: the mapping of ${arn} went with records it had not ` +
              `delivered (stream-check will find the replaced stream)`,
          );
          delete state[arn];
          saveState(state);
        }
        if (mine) {
          try {
            await visitStream(spec.region, spec.sourceTable, mine);
          } catch (error) {
            if ((error as Error).name !== "ResourceNotFoundException") throw error;
            if (!gone.has(mine)) {
              gone.add(mine);
              console.error(
                `${spec.sourceTable}: the stream its mapping reads, ${mine}, is gone; the ` +
                  `mapping delivers nothing until it is made again (npm run stack:up)`,
              );
            }
          }
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
