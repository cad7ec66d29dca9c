import assert from "node:assert/strict";
import type { StreamFailureMessage } from "../local-stack/aws/event_source_mapping.ts";
import { messageFiles, payloadRecords, readMessage } from "./failure_messages.ts";

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
  const notification = JSON.stringify({
    Records: [{ eventSource: "aws:s3", s3: { object: { key: "aws/lambda/m/s/x" } } }],
  });
  assert.throws(() => readMessage(notification), /an S3 event notification .* copy the object/);
  assert.throws(() => readMessage('{"Event":"s3:TestEvent"}'), /an S3 event notification/);
});

Deno.test("a directory's message files are its files and its subdirectories', whatever their names; a missing path is named", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/dlq-aa`, MESSAGE);
    Deno.writeTextFileSync(`${dir}/b.json`, MESSAGE);
    Deno.writeTextFileSync(`${dir}/.hidden`, MESSAGE);
    Deno.mkdirSync(`${dir}/replayed`);
    Deno.writeTextFileSync(`${dir}/replayed/old.json`, MESSAGE);
    // As an S3 destination's objects are moved here, with one already replayed.
    const day = `${dir}/aws/lambda/m-1/shardId-1/2026/12/05`;
    Deno.mkdirSync(`${day}/replayed`, { recursive: true });
    Deno.writeTextFileSync(`${day}/2026-12-05T04.07.09-r1`, MESSAGE);
    Deno.writeTextFileSync(`${day}/replayed/2026-12-05T04.00.00-r0`, MESSAGE);
    assert.deepEqual(messageFiles([dir, `${dir}/missing.json`]), {
      files: [`${day}/2026-12-05T04.07.09-r1`, `${dir}/b.json`, `${dir}/dlq-aa`],
      problems: [`${dir}/missing.json: no such file or directory`],
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

const ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/x";
const withPayload = (payload: unknown) =>
  ({ ...JSON.parse(MESSAGE), payload }) as StreamFailureMessage;
const rec = (seq: string, arn = ARN) => ({
  eventSourceARN: arn,
  dynamodb: { SequenceNumber: seq },
});

Deno.test("an S3 destination's object carries its records; an SQS message carries none", () => {
  assert.equal(payloadRecords(readMessage(MESSAGE)), undefined);
  const records = [rec("100"), rec("200")];
  assert.deepEqual(payloadRecords(withPayload({ Records: records })), records);
  assert.deepEqual(payloadRecords(withPayload(JSON.stringify({ Records: records }))), records);
});

Deno.test("a payload that holds more than the range (a batch bisected before Lambda gave up) gives the range's records", () => {
  const inRange = [rec("100"), rec("200")];
  assert.deepEqual(
    payloadRecords(withPayload(JSON.stringify({ Records: [rec("90"), ...inRange, rec("300")] }))),
    inRange,
  );
});

Deno.test("records that are not the message's range are refused, naming why", () => {
  const refused = (payload: unknown, why: RegExp) =>
    assert.throws(
      () => payloadRecords(withPayload(payload)),
      (e: Error) =>
        e.message.startsWith("its payload is not the records 100..200 of shardId-1: ") &&
        why.test(e.message),
    );
  refused("{nope", /not JSON/);
  refused({}, /it has no Records/);
  refused({ Records: [rec("100")] }, /1 records within it where the batch had 2/);
  refused({ Records: [rec("50"), rec("100"), rec("201")] }, /1 records within it where/);
  refused({ Records: [rec("100"), { eventSourceARN: ARN }] }, /a record has no sequence number/);
  refused({ Records: [rec("100"), rec("150", "arn:other")] }, /record 150 is of arn:other/);
  refused({ Records: [rec("150"), rec("100")] }, /record 100 is out of order/);
});
