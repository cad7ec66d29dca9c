import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";
import { answerOf, requestJson, serviceUrl, what, withBinaries } from "./dynamo_wire.ts";

Deno.test("each command goes to its own service's endpoint, unless one is configured", () => {
  const aws = { region: "us-west-2" };
  assert.equal(
    serviceUrl(aws, "DynamoDB_20120810.Scan").href,
    "https://dynamodb.us-west-2.amazonaws.com/",
  );
  assert.equal(
    serviceUrl(aws, "DynamoDBStreams_20120810.GetRecords").href,
    "https://streams.dynamodb.us-west-2.amazonaws.com/",
  );
  assert.equal(
    serviceUrl({ ...aws, endpoint: "http://127.0.0.1:8000" }, "DynamoDBStreams_20120810.GetRecords")
      .href,
    "http://127.0.0.1:8000/",
  );
});

Deno.test("China's regions have their own domain", () => {
  assert.equal(
    serviceUrl({ region: "cn-north-1" }, "DynamoDB_20120810.Scan").href,
    "https://dynamodb.cn-north-1.amazonaws.com.cn/",
  );
});

Deno.test("a request's JSON carries binaries as base64, and an answer's items get them back as bytes", () => {
  const bytes = new Uint8Array([0, 1, 254, 255]);
  assert.equal(requestJson({ Key: { id: { B: bytes } } }), '{"Key":{"id":{"B":"AAH+/w=="}}}');
  const body = withBinaries({
    Items: [{ id: { B: "AAH+/w==" } }],
    Records: [{ dynamodb: { Keys: { id: { B: "AAH+/w==" } } } }],
  }) as {
    Items: { id: { B: Uint8Array } }[];
    Records: { dynamodb: { Keys: { id: { B: Uint8Array } } } }[];
  };
  assert.deepEqual(body.Items[0].id.B, bytes);
  assert.deepEqual(body.Records[0].dynamodb.Keys.id.B, bytes);
});

Deno.test("a request is named by its operation and its table, or its stream's table", () => {
  assert.equal(what("DynamoDB_20120810.Scan", { TableName: "T" }), "Scan on T");
  assert.equal(
    what("DynamoDBStreams_20120810.DescribeStream", {
      StreamArn: "arn:aws:dynamodb:us-east-1:1:table/Visitors/stream/2026-01-01T00:00:00.000",
    }),
    "DescribeStream on Visitors",
  );
  assert.equal(what("DynamoDBStreams_20120810.GetRecords", { ShardIterator: "x" }), "GetRecords");
});

const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
  const bytes = new TextEncoder().encode(body);
  return { response: new Response(null, { status, headers }), bytes };
};

Deno.test("an error answer is a DynamoError named by its type, its message without the secrets", () => {
  const { response, bytes } = answer(
    400,
    '{"__type": "com.amazonaws.dynamodb.v20120810#ValidationException", "message": "bad SECRET"}',
  );
  const outcome = answerOf(
    response,
    bytes,
    "Scan on T",
    { httpStatusCode: 400 },
    false,
    (m) => m.replace("SECRET", "[redacted]"),
  );
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.error.name, "ValidationException");
  assert.equal(outcome.error.message, "Scan on T: bad [redacted]");
  assert.equal(outcome.retry, "no");
});

Deno.test("an answer whose bytes do not match its x-amz-crc32 is retried as transient", () => {
  const body = '{"Items": []}';
  const { response, bytes } = answer(200, body, {
    "x-amz-crc32": String((crc32(new TextEncoder().encode(body)) + 1) >>> 0),
  });
  const outcome = answerOf(response, bytes, "Scan on T", { httpStatusCode: 200 }, false, (m) => m);
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.error.name, "CRC32CheckFailed");
  assert.equal(outcome.retry, "transient");
});

Deno.test("a 5xx whose body is not JSON is named by its status and may pass when tried again", () => {
  const { response, bytes } = answer(503, "<html>busy</html>");
  const outcome = answerOf(
    response,
    bytes,
    "GetItem on T",
    { httpStatusCode: 503 },
    false,
    (m) => m,
  );
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.error.name, "HTTP503");
  assert.equal(outcome.error.message, "GetItem on T: HTTP 503 with a body that is not JSON");
  assert.equal(outcome.retry, "transient");
});
