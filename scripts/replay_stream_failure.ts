/**
 * `npm run stream:replay -- [FILE|DIR ...]`: delivers again what Lambda's on-failure
 * destination recorded, as the forwarder sends records to the webhook; the merge's
 * ordering guard makes a redelivery safe whatever has happened since.
 *
 * A message is an object of the S3 destination (the deployed one: it carries the
 * batch's records, so they are sent as they are, however old), or the body of an SQS
 * (or SNS) message, which names a shard and a sequence-number range only: those
 * records are read back from the stream (AT_SEQUENCE_NUMBER). Each is a file: the
 * bucket's objects copied here (`aws s3 cp --recursive`), or the stack's poller's, under
 * `.local/stream-failures/` (the default) as in the bucket. A replayed message moves to
 * `replayed/` beside it.
 *
 * A range without its records that is older than the stream's 24 h retention (or whose
 * stream was replaced) is gone: the command says so and names the validator's repair of
 * that table, which re-reads the table itself.
 *
 * Settings: WEBHOOK_URL and SYNC_WEBHOOK_SECRET (the local stack's, with its DynamoDB
 * endpoint, when neither is set or when WEBHOOK_URL names the stack's functions), AWS
 * credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (for a profile
 * or a role, `eval "$(aws configure export-credentials --format env)"` first),
 * DYNAMODB_ENDPOINT for DynamoDB Local. The command first says where
 * it delivers and reads.
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { DynamoClient } from "../functions-shared/dynamo_http.ts";
import { compareDecimal } from "../functions-shared/dynamo_numbers.ts";
import { awsClientConfig } from "../functions-shared/dynamo_client.ts";
import { bySourceTable, tableNameFromArn } from "../functions-shared/table_registry.ts";
import { splitIntoBodies, type StreamRecord } from "../lambda/stream_records.ts";
import { deliver } from "../lambda/webhook_delivery.ts";
import { webhookSecret } from "../lambda/webhook_secret.ts";
import { deliverBisecting } from "./replay_bisect.ts";
import { messageFiles, payloadRecords, readMessage, REPLAYED_DIR } from "./failure_messages.ts";
import { replayTargets } from "./replay_targets.ts";
import { STACK_ENV_FILE } from "../local-stack/config.ts";
import type { StreamFailureMessage } from "../local-stack/aws/event_source_mapping.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import { FAILURE_DIR } from "../local-stack/aws/stream_poller.ts";
import { listShards, readRecords, shardIterator } from "../local-stack/aws/stream_reader.ts";

/** What happened to one message. */
export type ReplayOutcome =
  | { kind: "replayed"; records: number }
  | { kind: "expired" | "refused"; reason: string; repair: string }
  | { kind: "failed"; reason: string };

function streamsClient(region: string): DynamoClient {
  // Aimed at a local endpoint without keys: the stack's, "local" (its DynamoDB proxy checks
  // signatures as DynamoDB does, and knows that key only).
  const local = process.env.DYNAMODB_ENDPOINT ? "local" : undefined;
  const env = (name: string) =>
    process.env[name] ??
      (name === "AWS_ACCESS_KEY_ID" || name === "AWS_SECRET_ACCESS_KEY" ? local : undefined);
  return new DynamoClient(awsClientConfig(env, region));
}

/**
 * How long one body's delivery may retry a failing webhook: about a Lambda invocation's
 * time, as each of the mapping's tries of a batch has its own.
 */
const SEND_LIMIT_MS = 60_000;

/** Empty GetRecords pages in a row after which a range's read gives up. */
export const MAX_EMPTY_PAGES = 100;

/**
 * The records from `first` (an iterator at the range's start) through `end`, page by
 * page. GetRecords may answer empty pages before later records of an open shard (AWS,
 * DynamoDB Streams' GetRecords), so an empty page is no end: the read stops once it has
 * seen a record at or past `end` (`reached`), at the shard's end, or after
 * `maxEmptyPages` empty pages in a row.
 */
export async function readRange(
  readPage: (iterator: string) => Promise<{ records: StreamRecord[]; next?: string }>,
  first: string | undefined,
  end: string,
  maxEmptyPages = MAX_EMPTY_PAGES,
): Promise<{ records: StreamRecord[]; reached: boolean; emptyPages: number }> {
  const records: StreamRecord[] = [];
  let reached = false;
  let emptyPages = 0;
  let iterator = first;
  while (iterator && !reached && emptyPages < maxEmptyPages) {
    const page = await readPage(iterator);
    for (const record of page.records) {
      const position = compareDecimal(record.dynamodb!.SequenceNumber!, end);
      if (position <= 0) records.push(record);
      if (position >= 0) reached = true;
    }
    emptyPages = page.records.length === 0 ? emptyPages + 1 : 0;
    iterator = page.next;
  }
  return { records, reached, emptyPages };
}

/**
 * The message's range read back from its stream, or why it cannot be (`expired`: what
 * to say of a range the stream no longer holds).
 */
async function recordsFromStream(
  info: StreamFailureMessage["DDBStreamBatchInfo"],
  region: string,
  range: string,
  expired: (why: string) => ReplayOutcome,
): Promise<StreamRecord[] | ReplayOutcome> {
  const client = streamsClient(region);
  let shards;
  try {
    shards = await listShards(client, info.streamArn);
  } catch (error) {
    if ((error as Error).name === "ResourceNotFoundException") {
      return expired(
        "cannot be read: the stream no longer exists (the table or its stream was replaced)",
      );
    }
    throw error;
  }
  const shard = shards.find((s) => s.ShardId === info.shardId);
  const oldest = shard?.SequenceNumberRange?.StartingSequenceNumber;
  if (!shard || (oldest && compareDecimal(oldest, info.startSequenceNumber) > 0)) {
    return expired("are past the stream's 24 h retention and cannot be read back");
  }

  let read;
  try {
    const first = await shardIterator(client, info.streamArn, info.shardId, {
      at: info.startSequenceNumber,
    });
    read = await readRange(
      (iterator) => readRecords(client, info.streamArn, iterator),
      first,
      info.endSequenceNumber,
    );
  } catch (error) {
    if ((error as Error).name === "TrimmedDataAccessException") {
      return expired("are past the stream's 24 h retention and cannot be read back");
    }
    throw error;
  }
  if (!read.reached) {
    // Not replayed (the message stays where it is): what was read is not the range.
    return {
      kind: "failed",
      reason: `${range}: the stream gave them only up to ${
        read.records.at(-1)?.dynamodb?.SequenceNumber ?? "none"
      } (${read.emptyPages} empty pages in a row after it); nothing was delivered, run the command again`,
    };
  }
  return read.records;
}

/**
 * Delivers the message's records again: those an S3 destination's object carries, else
 * its range read back from the stream (while the stream holds it, 24 h).
 */
export async function replayMessage(message: StreamFailureMessage): Promise<ReplayOutcome> {
  const info = message.DDBStreamBatchInfo;
  const table = tableNameFromArn(info.streamArn);
  const spec = table ? bySourceTable(table) : undefined;
  if (!spec) {
    return { kind: "failed", reason: `${info.streamArn} is not a stream of a registered table` };
  }
  const range =
    `records ${info.startSequenceNumber}..${info.endSequenceNumber} of ${info.shardId} (${spec.sourceTable})`;
  const repair = `repair ${spec.targetTable} from the source instead: POST ${
    process.env.FUNCTIONS_URL ?? "<project>/functions/v1"
  }/data-checksum-validator {"table": "${spec.targetTable}", "repair": true}`;
  const expired = (why: string): ReplayOutcome => ({
    kind: "expired",
    reason: `${range} ${why}`,
    repair,
  });

  // Records an object carries that are not its range are not sent: the range is read
  // from the stream instead, while it holds them, else the repair is named.
  let carried;
  try {
    carried = payloadRecords(message);
  } catch (error) {
    console.error(
      `stream:replay: ${range}: ${(error as Error).message}; reading them from the stream instead`,
    );
  }
  const records = carried ??
    await recordsFromStream(info, spec.region, range, expired);
  if (!Array.isArray(records)) return records;

  // Sent as the forwarder sends them, each body with a Lambda invocation's time for its
  // retries, and bisected as Lambda's mapping would (scripts/replay_bisect.ts).
  const url = process.env.WEBHOOK_URL!;
  await webhookSecret(); // a secret that cannot be read is named before anything is sent
  const sent = await deliverBisecting(
    splitIntoBodies(records),
    (body) => deliver(url, () => webhookSecret(), body, Date.now() + SEND_LIMIT_MS),
  );
  if (sent.stoppedAt) {
    return {
      kind: "failed",
      reason: `${range}: the webhook did not take them from ${
        sent.stoppedAt.dynamodb?.SequenceNumber ?? "?"
      } on (see above; ${sent.delivered} delivered before); run the command again`,
    };
  }
  if (sent.refused.length > 0) {
    const named = sent.refused.map((r) =>
      `${r.dynamodb?.SequenceNumber ?? "?"} (${r.eventName ?? "?"} of ${
        JSON.stringify(r.dynamodb?.Keys ?? {})
      })`
    );
    return {
      kind: "refused",
      reason: `${range}: the webhook refused ${sent.refused.length} of them on their own (its ` +
        `answers are above): ${named.join(", ")}; the other ${sent.delivered} were delivered`,
      repair,
    };
  }
  return { kind: "replayed", records: records.length };
}

if (import.meta.main) {
  // The local stack's settings, unless another webhook is named: then AWS is the real one.
  const targets = replayTargets(
    process.env,
    existsSync(STACK_ENV_FILE) ? readStackEnv() : undefined,
  );
  if ("problem" in targets) {
    console.error(`stream:replay: ${targets.problem}`);
    Deno.exit(2);
  }
  console.log(`stream:replay: ${targets.line}`);
  const named = Deno.args.length > 0;
  const paths = named ? Deno.args : existsSync(FAILURE_DIR) ? [FAILURE_DIR] : [];
  const { files, problems: missing } = messageFiles(paths);
  for (const problem of missing) console.error(`stream:replay: ${problem}`);
  let problems = missing.length;
  if (files.length === 0) {
    console.log(
      `stream:replay: no on-failure messages to replay${named ? ` in ${paths.join(", ")}` : ""}`,
    );
    // Paths named but nothing in them is a mistake to say, not a success.
    if (named) problems++;
  }
  for (const file of files) {
    let outcome: ReplayOutcome;
    try {
      outcome = await replayMessage(readMessage(readFileSync(file, "utf8")));
    } catch (error) {
      outcome = { kind: "failed", reason: (error as Error).message };
    }
    if (outcome.kind === "replayed") {
      const done = join(dirname(file), REPLAYED_DIR);
      mkdirSync(done, { recursive: true });
      renameSync(file, join(done, basename(file)));
      console.log(`stream:replay: ${file}: delivered ${outcome.records} records again`);
    } else {
      problems++;
      console.error(`stream:replay: ${file}: ${outcome.reason}`);
      if (outcome.kind !== "failed") console.error(`stream:replay: ${outcome.repair}`);
    }
  }
  Deno.exit(problems === 0 ? 0 : 1);
}
