/**
 * When delivery keeps failing: the event source mapping emulation sends exhausted
 * batches to the on-failure destination (an S3 object with their records, or an SQS
 * message with their range only), bisecting a batch that makes the function throw;
 * `npm run stream:replay` delivers an object's records as they are, reads a message's
 * range back from the stream, or, once that is past the retention, says so and names
 * the repair.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import type { StreamRecord } from "../lambda/stream_records.ts";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import {
  EventSourceMapping,
  type StreamFailureMessage,
} from "../local-stack/aws/event_source_mapping.ts";
import { failureObject, failureObjectKey } from "../local-stack/aws/failure_objects.ts";
import { connectDb, dynamo, stack, streamRecordsContaining } from "./stack_clients.ts";
import { inProcess, LambdaEnvironments } from "../local-stack/aws/lambda_environments.ts";

const spec = byTargetTable("firespring_segments")!;

async function putSegments(marker: string, n: number) {
  for (let i = 0; i < n; i++) {
    await dynamo(spec.region).send(
      new PutItemCommand({
        TableName: spec.sourceTable,
        Item: {
          segment_id: { S: `${marker}-${i}` },
          name: { S: `n${i}` },
          value: { N: String(i) },
        },
      }),
    );
  }
}

async function replayCommand(...args: string[]) {
  return await replayCommandTo(`${stack.FUNCTIONS_URL}/mmp-toledo-sync`, ...args);
}

async function replayCommandTo(webhookUrl: string, ...args: string[]) {
  const out = await new Deno.Command(DENO_BIN, {
    args: ["run", "-A", "scripts/replay_stream_failure.ts", ...args],
    cwd: ROOT,
    // The stack's own settings, whatever this test process set for itself.
    env: {
      WEBHOOK_URL: webhookUrl,
      SYNC_WEBHOOK_SECRET: stack.SYNC_WEBHOOK_SECRET,
      DYNAMODB_ENDPOINT: stack.DYNAMODB_ENDPOINT,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/** An on-failure message for `batch` (its range), as Lambda sends one for a batch it gave up. */
function failureMessage(
  batch: Pick<
    StreamFailureMessage["DDBStreamBatchInfo"],
    "shardId" | "startSequenceNumber" | "endSequenceNumber" | "batchSize" | "streamArn"
  >,
  condition: StreamFailureMessage["requestContext"]["condition"],
): StreamFailureMessage {
  return {
    requestContext: {
      requestId: "r",
      functionArn: "arn:aws:lambda:us-east-1:0:function:f",
      condition,
      approximateInvokeCount: 1,
    },
    responseContext: { statusCode: 200, executedVersion: "$LATEST" },
    version: "1.0",
    timestamp: new Date().toISOString(),
    DDBStreamBatchInfo: {
      ...batch,
      approximateArrivalOfFirstRecord: "",
      approximateArrivalOfLastRecord: "",
    },
  };
}

/** Writes S3 failure objects under `dir` as `aws s3 cp --recursive` copies them; their keys. */
function copyObjectsHere(dir: string, objects: StreamFailureMessage[]): string[] {
  return objects.map((object) => {
    const key = failureObjectKey("m-1", object.DDBStreamBatchInfo.shardId, new Date());
    mkdirSync(dirname(join(dir, key)), { recursive: true });
    writeFileSync(join(dir, key), JSON.stringify(object));
    return key;
  });
}

Deno.test("exhausted batches go to the on-failure destination and stream:replay delivers them", async () => {
  const marker = `dlq-${crypto.randomUUID().slice(0, 8)}`;
  await putSegments(marker, 3);
  const { streamArn, found } = await streamRecordsContaining("firespring_segments", marker);
  assert.equal(found.length, 3);
  const records = found.map((f) => f.record as StreamRecord);
  const shardId = found[0].shardId;

  const messages: StreamFailureMessage[] = [];
  process.env.WEBHOOK_URL = `${stack.FUNCTIONS_URL}/mmp-toledo-sync`;
  process.env.SYNC_WEBHOOK_SECRET = `whsec_${btoa("not-the-secret".padEnd(32, "!"))}`;
  // The Lambda's own module, in execution environments as the stack's poller runs it.
  const lambda = new LambdaEnvironments(new URL("../lambda/stream_forwarder.ts", import.meta.url));
  const mapping = new EventSourceMapping({
    invoke: lambda.invoke,
    batchSize: 2,
    maxRetryAttempts: 1,
    maxRecordAgeS: -1,
    bisectBatchOnFunctionError: true,
    functionTimeoutMs: 5_000,
    retryBaseDelayMs: 10,
    // The deployed destination: an S3 bucket, whose objects carry the records.
    onFailure: (message, batch) => {
      messages.push(failureObject(message, batch));
      return Promise.resolve();
    },
  });
  await mapping.process(streamArn, shardId, records).finally(() => lambda.close());

  const seq = (r: StreamRecord) => r.dynamodb!.SequenceNumber!;
  assert.deepEqual(
    messages.map((m) => ({
      ...m.DDBStreamBatchInfo,
      approximateArrivalOfFirstRecord: "",
      approximateArrivalOfLastRecord: "",
    })),
    [
      {
        shardId,
        startSequenceNumber: seq(records[0]),
        endSequenceNumber: seq(records[1]),
        batchSize: 2,
        streamArn,
        approximateArrivalOfFirstRecord: "",
        approximateArrivalOfLastRecord: "",
      },
      {
        shardId,
        startSequenceNumber: seq(records[2]),
        endSequenceNumber: seq(records[2]),
        batchSize: 1,
        streamArn,
        approximateArrivalOfFirstRecord: "",
        approximateArrivalOfLastRecord: "",
      },
    ],
  );
  assert.ok(messages.every((m) => m.requestContext.condition === "RetryAttemptsExhausted"));
  assert.ok(messages.every((m) => m.requestContext.approximateInvokeCount === 2));

  assert.deepEqual(messages.map((m) => JSON.parse(m.payload!).Records.map(seq)), [
    [seq(records[0]), seq(records[1])],
    [seq(records[2])],
  ]);

  const dir = mkdtempSync(join(tmpdir(), "stream-failures-"));
  const sql = connectDb();
  try {
    const keys = copyObjectsHere(dir, messages);
    const { code, text } = await replayCommand(dir);
    assert.equal(code, 0, text);
    // An object's own records, nothing else the shard holds between them.
    assert.ok(text.includes(`${join(dir, keys[0])}: delivered 2 records again`), text);
    assert.ok(text.includes(`${join(dir, keys[1])}: delivered 1 records again`), text);
    const rows = await sql`select segment_id, segment_name from public.firespring_segments
                           where segment_id like ${`${marker}-%`} order by segment_id`;
    assert.deepEqual(rows.map((r) => `${r.segment_id}=${r.segment_name}`), [
      `${marker}-0=n0`,
      `${marker}-1=n1`,
      `${marker}-2=n2`,
    ]);
    for (const key of keys) {
      const replayed = join(dirname(join(dir, key)), "replayed");
      assert.ok(readdirSync(replayed).includes(key.split("/").at(-1)!), key);
    }
  } finally {
    await sql.end();
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("an S3 object's records are delivered even when its stream no longer holds them", async () => {
  // A stream of the table that is gone (replaced): its records can be read back from
  // nowhere but the object.
  const goneStream = `arn:aws:dynamodb:${spec.region}:000000000000:table/${spec.sourceTable}` +
    "/stream/2020-01-01T00:00:00.000";
  const record = (n: number) => ({
    eventID: `e${n}`,
    eventName: "INSERT",
    eventSource: "aws:dynamodb",
    eventSourceARN: goneStream,
    awsRegion: spec.region,
    dynamodb: {
      Keys: { segment_id: { S: `gone-${n}` } },
      NewImage: { segment_id: { S: `gone-${n}` }, name: { S: `n${n}` } },
      SequenceNumber: String(1000 + n).padStart(21, "0"),
      ApproximateCreationDateTime: 1577836800,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  });
  const message = failureMessage({
    shardId: "shardId-00000001577836800000-00000000",
    startSequenceNumber: record(1).dynamodb.SequenceNumber,
    endSequenceNumber: record(2).dynamodb.SequenceNumber,
    batchSize: 2,
    streamArn: goneStream,
  }, "RecordAgeExceeded");
  // A webhook of the test's own: the records are the object's, of a stream that is gone.
  const bodies: StreamRecord[][] = [];
  const webhook = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    async (req) => {
      const records = JSON.parse(await req.text()).records as StreamRecord[];
      bodies.push(records);
      const n = records.length;
      return Response.json({ received: n, applied: n, skipped: 0, deadLettered: 0 });
    },
  );
  const dir = mkdtempSync(join(tmpdir(), "stream-failures-"));
  try {
    // The event holds the batch before it was bisected: only the range's records go.
    const [objectKey] = copyObjectsHere(dir, [
      failureObject(message, [record(0), record(1), record(2), record(3)]),
    ]);
    const withoutRecords = join(dir, "sqs-message.json");
    writeFileSync(withoutRecords, JSON.stringify(message));
    // An object whose event lacks a record of its range: read from the stream instead.
    const short = failureMessage({
      ...message.DDBStreamBatchInfo,
      startSequenceNumber: record(5).dynamodb.SequenceNumber,
      endSequenceNumber: record(7).dynamodb.SequenceNumber,
      batchSize: 3,
    }, "RecordAgeExceeded");
    writeFileSync(
      join(dir, "short.json"),
      JSON.stringify(failureObject(short, [record(5), record(7)])),
    );
    const { code, text } = await replayCommandTo(`http://127.0.0.1:${webhook.addr.port}/`, dir);
    assert.equal(code, 1, text);
    assert.ok(text.includes(`${join(dir, objectKey)}: delivered 2 records again`), text);
    assert.deepEqual(bodies.flat().map((r) => r.eventID), ["e1", "e2"]);
    assert.match(
      text,
      /its payload is not the records 0+1005\.\.0+1007 of \S+: 2 records within it where the batch had 3; reading them from the stream instead/,
    );
    assert.match(
      text,
      /short\.json: records 0+1005\.\.0+1007 of \S+ \(\S+\) cannot be read: the stream no longer exists/,
    );
    // The same range as an SQS message, without its records: gone with its stream.
    assert.match(
      text,
      new RegExp(
        `sqs-message\\.json: records 0+1001\\.\\.0+1002 of shardId-\\S+ ` +
          `\\(${spec.sourceTable}\\) cannot be read: the stream no longer exists`,
      ),
    );
  } finally {
    await webhook.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a function error bisects the batch until the bad record stands alone", async () => {
  const delivered: string[] = [];
  const messages: StreamFailureMessage[] = [];
  const mapping = new EventSourceMapping({
    invoke: inProcess((event) => {
      if (event.Records.some((r) => r.eventID === "poison")) throw new Error("boom");
      delivered.push(...event.Records.map((r) => r.eventID!));
      return Promise.resolve({ batchItemFailures: [] });
    }),
    batchSize: 4,
    maxRetryAttempts: 3,
    maxRecordAgeS: -1,
    bisectBatchOnFunctionError: true,
    functionTimeoutMs: 1_000,
    retryBaseDelayMs: 1,
    onFailure: (message) => {
      messages.push(message);
      return Promise.resolve();
    },
  });
  const records = ["a", "b", "poison", "d"].map((id, i) => ({
    eventID: id,
    // Written now: the mapping has no age limit here, so records past the stream's 24 h
    // retention would be trimmed before any try.
    dynamodb: {
      SequenceNumber: String(100 + i),
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
    },
  }));
  await mapping.process("arn:aws:dynamodb:us-east-1:0:table/t/stream/x", "shard-1", records);
  assert.deepEqual(delivered, ["a", "b", "d"]);
  assert.equal(messages.length, 1);
  assert.equal(messages[0].DDBStreamBatchInfo.startSequenceNumber, "102");
  assert.equal(messages[0].DDBStreamBatchInfo.batchSize, 1);
  assert.equal(messages[0].responseContext.functionError, "Unhandled");
});

Deno.test("a range past the stream's retention is named, with the repair to run", async () => {
  const marker = `old-${crypto.randomUUID().slice(0, 8)}`;
  await putSegments(marker, 1);
  const { streamArn, shards, found } = await streamRecordsContaining("firespring_segments", marker);
  const shard = shards.find((s) => s.ShardId === found[0].shardId)!;
  const oldest = BigInt(shard.SequenceNumberRange!.StartingSequenceNumber!);
  const before = String(oldest - 1n).padStart(21, "0");
  const message = failureMessage({
    shardId: shard.ShardId!,
    startSequenceNumber: before,
    endSequenceNumber: before,
    batchSize: 1,
    streamArn,
  }, "RetryAttemptsExhausted");
  const dir = mkdtempSync(join(tmpdir(), "stream-failures-"));
  try {
    writeFileSync(join(dir, "old.json"), JSON.stringify(message));
    const { code, text } = await replayCommand(join(dir, "old.json"));
    assert.equal(code, 1);
    assert.match(
      text,
      new RegExp(
        `records ${before}\\.\\.${before} of .* \\(firespring-backdoor-segments-dev\\) are past the stream's 24 h retention`,
      ),
    );
    assert.match(
      text,
      /data-checksum-validator \{"table": "firespring_segments", "repair": true\}/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("stream:replay bisects a range the webhook refuses: the refused record is named, the others delivered", async () => {
  const marker = `bisect-${crypto.randomUUID().slice(0, 8)}`;
  await putSegments(marker, 3);
  const { streamArn, found } = await streamRecordsContaining("firespring_segments", marker);
  const seqs = found.map((f) => (f.record as StreamRecord).dynamodb!.SequenceNumber!);
  const poison = seqs[1];
  // A webhook that refuses (400) any body holding the middle record, and takes the rest.
  const bodies: string[][] = [];
  const webhook = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    async (req) => {
      const records = JSON.parse(await req.text()).records as StreamRecord[];
      const held = records.map((r) => r.dynamodb!.SequenceNumber!);
      bodies.push(held);
      if (held.includes(poison)) return new Response('{"error":"refused"}', { status: 400 });
      const n = records.length;
      return Response.json({ received: n, applied: n, skipped: 0, deadLettered: 0 });
    },
  );
  const message = {
    requestContext: { condition: "RetryAttemptsExhausted" },
    DDBStreamBatchInfo: {
      shardId: found[0].shardId,
      startSequenceNumber: seqs[0],
      endSequenceNumber: seqs[2],
      batchSize: 3,
      streamArn,
    },
  };
  const dir = mkdtempSync(join(tmpdir(), "stream-failures-"));
  try {
    writeFileSync(join(dir, "range.json"), JSON.stringify(message));
    const { code, text } = await replayCommandTo(
      `http://127.0.0.1:${webhook.addr.port}/`,
      join(dir, "range.json"),
    );
    assert.equal(code, 1, text);
    assert.match(
      text,
      new RegExp(
        `the webhook refused 1 of them on their own \\(its answers are above\\): ${poison} ` +
          `\\(INSERT of \\{"segment_id":\\{"S":"${marker}-1"\\}\\}\\); the other \\d+ were delivered`,
      ),
    );
    assert.match(
      text,
      /data-checksum-validator \{"table": "firespring_segments", "repair": true\}/,
    );
    // Every other record of the range reached the webhook in a body it took.
    const taken = bodies.filter((b) => !b.includes(poison)).flat();
    assert.ok(taken.includes(seqs[0]) && taken.includes(seqs[2]), JSON.stringify(bodies));
    assert.deepEqual(readdirSync(dir), ["range.json"], "the message stays to be dealt with");
  } finally {
    await webhook.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
