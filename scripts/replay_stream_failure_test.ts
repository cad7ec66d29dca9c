import assert from "node:assert/strict";
import type { StreamRecord } from "../lambda/stream_forwarder.ts";
import { messageFiles, readMessage, readRange, replayTargets } from "./replay_stream_failure.ts";

const record = (seq: number) => ({ dynamodb: { SequenceNumber: String(seq) } }) as StreamRecord;

/** A shard read page by page: each page's records, the iterators "i0", "i1", ... */
function pages(...contents: number[][]) {
  return (iterator: string) => {
    const at = Number(iterator.slice(1));
    return Promise.resolve({
      records: (contents[at] ?? []).map(record),
      next: at + 1 < contents.length ? `i${at + 1}` : undefined,
    });
  };
}
const seqs = (records: StreamRecord[]) => records.map((r) => Number(r.dynamodb!.SequenceNumber));

Deno.test("a range is read past empty pages, to its end and no further", async () => {
  const read = await readRange(pages([1, 2], [], [3, 4, 5], [6]), "i0", "5");
  assert.deepEqual(seqs(read.records), [1, 2, 3, 4, 5]);
  assert.equal(read.reached, true);
});

Deno.test("a range whose end the stream never gives is not reached, after so many empty pages", async () => {
  const read = await readRange(pages([1, 2], [], [], [], [9]), "i0", "5", 3);
  assert.deepEqual(seqs(read.records), [1, 2]);
  assert.equal(read.reached, false);
  assert.equal(read.emptyPages, 3);
  const closed = await readRange(pages([1, 2]), "i0", "5");
  assert.equal(closed.reached, false, "a shard that ends before the range does");
});

const MESSAGE = JSON.stringify({
  requestContext: { condition: "RetryAttemptsExhausted" },
  DDBStreamBatchInfo: {
    shardId: "shardId-1",
    startSequenceNumber: "100",
    endSequenceNumber: "200",
    batchSize: 2,
    streamArn: "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
  },
});

Deno.test("a message is the SQS body, or an SNS notification of it; anything else is named", () => {
  assert.equal(readMessage(MESSAGE).DDBStreamBatchInfo.startSequenceNumber, "100");
  const sns = JSON.stringify({ Type: "Notification", Message: MESSAGE });
  assert.equal(readMessage(sns).DDBStreamBatchInfo.endSequenceNumber, "200");
  assert.throws(() => readMessage("{nope"), /^Error: not JSON \(/);
  assert.throws(() => readMessage("{}"), /not an on-failure message of a DynamoDB stream mapping/);
});

Deno.test("a directory's message files are its files, whatever their names; a missing path is named", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/dlq-aa`, MESSAGE);
    Deno.writeTextFileSync(`${dir}/b.json`, MESSAGE);
    Deno.writeTextFileSync(`${dir}/.hidden`, MESSAGE);
    Deno.mkdirSync(`${dir}/replayed`);
    Deno.writeTextFileSync(`${dir}/replayed/old.json`, MESSAGE);
    assert.deepEqual(messageFiles([dir, `${dir}/missing.json`]), {
      files: [`${dir}/b.json`, `${dir}/dlq-aa`],
      problems: [`${dir}/missing.json: no such file or directory`],
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the targets: the local stack's unless a webhook is named; a secret without its URL is refused", () => {
  const stack = {
    FUNCTIONS_URL: "http://127.0.0.1:54321/functions/v1",
    SYNC_WEBHOOK_SECRET: "whsec_local",
    DYNAMODB_ENDPOINT: "http://127.0.0.1:8000",
  };
  const local: Record<string, string | undefined> = {};
  assert.deepEqual(replayTargets(local, stack), {
    line: "webhook at 127.0.0.1:54321, " +
      "DynamoDB Streams at http://127.0.0.1:8000",
  });
  assert.equal(local.SYNC_WEBHOOK_SECRET, "whsec_local");

  const forgotUrl: Record<string, string | undefined> = { SYNC_WEBHOOK_SECRET: "whsec_prod" };
  const refused = replayTargets(forgotUrl, stack);
  assert.ok("problem" in refused);
  assert.match(refused.problem, /^WEBHOOK_URL is not set: name the webhook/);
  assert.ok(!refused.problem.includes("whsec_prod"), "no secret in the message");
  assert.equal(forgotUrl.DYNAMODB_ENDPOINT, undefined, "nothing of the local stack's taken");

  const production: Record<string, string | undefined> = {
    WEBHOOK_URL: "https://abcdefghijklmnopqrst.supabase.co/functions/v1/mmp-toledo-sync",
    SYNC_WEBHOOK_SECRET: "whsec_prod",
  };
  assert.deepEqual(replayTargets(production, stack), {
    line: "webhook at abcdefghijklmnopqrst.supabase.co, " +
      "DynamoDB Streams at AWS's regional endpoints",
  });
  assert.equal(production.DYNAMODB_ENDPOINT, undefined);
  assert.ok("problem" in replayTargets({}, undefined), "no stack and no URL");
  const noSecret = replayTargets({ WEBHOOK_URL: production.WEBHOOK_URL }, stack);
  assert.ok("problem" in noSecret, "a webhook named without its secret");
  assert.match(noSecret.problem, /^neither SYNC_WEBHOOK_SECRET nor SYNC_WEBHOOK_SECRET_ARN is set/);
  assert.ok(
    "line" in
      replayTargets({
        ...production,
        SYNC_WEBHOOK_SECRET: undefined,
        SYNC_WEBHOOK_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:1:secret:x",
      }, stack),
  );
});
