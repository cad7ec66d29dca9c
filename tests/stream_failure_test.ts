/**
 * When delivery keeps failing: the event source mapping emulation sends exhausted
 * batches (their range, not their records) to the on-failure destination, bisecting a
 * batch that makes the function throw; `npm run stream:replay` reads such a range back
 * from the stream and delivers it, or, once it is past the retention, says so and names
 * the repair.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import type { StreamRecord } from "../lambda/stream_records.ts";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import {
  EventSourceMapping,
  type StreamFailureMessage,
} from "../local-stack/aws/event_source_mapping.ts";
import { dynamo, stack, streamRecordsContaining } from "./stack_clients.ts";
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
    onFailure: (message) => {
      messages.push(message);
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

  const dir = mkdtempSync(join(tmpdir(), "stream-failures-"));
  try {
    messages.forEach((m, i) => writeFileSync(join(dir, `${i}.json`), JSON.stringify(m)));
    const { code, text } = await replayCommand(dir);
    assert.equal(code, 0, text);
    // A range holds every record of the shard between its ends: with other files writing
    // the same table meanwhile, this test's own and perhaps more.
    const again = (file: string) =>
      Number(new RegExp(`${file}: delivered (\\d+) records again`).exec(text)?.[1] ?? 0);
    assert.ok(again("0\\.json") >= 2 && again("1\\.json") >= 1, text);
    assert.deepEqual(readdirSync(join(dir, "replayed")).sort(), ["0.json", "1.json"]);
  } finally {
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
  const message: StreamFailureMessage = {
    requestContext: {
      requestId: "r",
      functionArn: "arn:aws:lambda:us-east-1:0:function:f",
      condition: "RetryAttemptsExhausted",
      approximateInvokeCount: 3,
    },
    responseContext: { statusCode: 200, executedVersion: "$LATEST" },
    version: "1.0",
    timestamp: new Date().toISOString(),
    DDBStreamBatchInfo: {
      shardId: shard.ShardId!,
      startSequenceNumber: before,
      endSequenceNumber: before,
      approximateArrivalOfFirstRecord: "",
      approximateArrivalOfLastRecord: "",
      batchSize: 1,
      streamArn,
    },
  };
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
