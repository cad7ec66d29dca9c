/**
 * The stack's stream poller: what Lambda's event source mappings do on AWS. It finds
 * the streams of the nine source tables in DynamoDB Local (both regions), reads every
 * shard in order (a child after its parent), and hands the records to the real Lambda
 * handler (lambda/stream_forwarder.ts) through the event source mapping emulation,
 * which delivers them to the local webhook (shard_poller.ts reads the shards). Positions are checkpointed in
 * `.local/stream-poller.json`; what exhausts its retries goes to the on-failure
 * destination, an S3 bucket as deployed: here a file per batch under
 * `.local/stream-failures/`, named and laid out as the bucket's objects are
 * (failure_objects.ts), with the batch's records.
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
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { awsClientConfig, perRegion } from "../../functions-shared/dynamo_client.ts";
import { DynamoClient } from "../../functions-shared/dynamo_http.ts";
import { tableNameFromArn, TABLES } from "../../functions-shared/table_registry.ts";
import { LOCAL_DIR } from "../config.ts";
import type { StreamRecord } from "../../lambda/stream_records.ts";
import { EventSourceMapping, type StreamFailureMessage } from "./event_source_mapping.ts";
import { failureObject, failureObjectKey } from "./failure_objects.ts";
import { DEPLOYED_MAPPING, mappingSetting } from "./mapping_settings.ts";
import { LambdaEnvironments, type LambdaFunction } from "./lambda_environments.ts";
import { StreamMappings } from "./stream_mappings.ts";
import { shardPoller } from "./shard_poller.ts";
import { readStackEnv, stackEnvReader } from "../stack_env.ts";
import { MAPPING_HEADER, proxyWatch } from "./stream_watch.ts";

/** Where the on-failure destination's messages land. */
export const FAILURE_DIR = join(LOCAL_DIR, "stream-failures");
const DISCOVER_MS = 1_000;
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

/** Each stream's mapping's id, for the poller's life (on AWS, the mapping's UUID). */
const mappingIds = new Map<string, string>();

async function writeFailure(message: StreamFailureMessage, records: StreamRecord[]): Promise<void> {
  const info = message.DDBStreamBatchInfo;
  let mappingId = mappingIds.get(info.streamArn);
  if (!mappingId) mappingIds.set(info.streamArn, mappingId = crypto.randomUUID());
  const file = join(FAILURE_DIR, failureObjectKey(mappingId, info.shardId, new Date()));
  mkdirSync(dirname(file), { recursive: true });
  await Deno.writeTextFile(file, JSON.stringify(failureObject(message, records)));
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
  const poller = shardPoller({ dynamoIn, mapping, watch });
  const state = poller.state;
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
          poller.save();
        }
        if (mine) {
          try {
            await poller.visitStream(spec.region, spec.sourceTable, mine);
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
