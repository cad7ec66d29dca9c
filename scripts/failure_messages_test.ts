import assert from "node:assert/strict";
import { messageFiles, readMessage } from "./failure_messages.ts";

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
