import assert from "node:assert/strict";
import { retryKind } from "../../functions-shared/dynamo_errors.ts";
import { DescribeLimit, MAX_PER_SECOND, rateExceeded, WINDOW_MS } from "./describe_limit.ts";

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T00:00:00.000";

/** The layer in front of a fake DynamoDB Local, on a fake clock. */
function served() {
  let now = 0;
  const forwarded: string[] = [];
  const lines: string[] = [];
  const limit = new DescribeLimit({ now: () => now, log: (line) => lines.push(line) });
  const next = (request: Request) => {
    forwarded.push(request.headers.get("x-amz-target")!);
    return Promise.resolve(Response.json({ StreamDescription: { StreamArn: ARN, Shards: [] } }));
  };
  /** One call of `operation` about `stream`, signed by `key` for `region`. */
  const ask = async (
    operation = "DescribeStream",
    key = "AKID",
    region = "us-east-1",
    stream = ARN,
  ) => {
    const response = await limit.handle(
      new Request("http://dynamodb/", {
        method: "POST",
        headers: {
          "x-amz-target": `DynamoDBStreams_20120810.${operation}`,
          authorization:
            `AWS4-HMAC-SHA256 Credential=${key}/20261201/${region}/dynamodb/aws4_request, ` +
            "SignedHeaders=host, Signature=0",
        },
        body: JSON.stringify({ StreamArn: stream }),
      }),
      next,
    );
    return { status: response.status, body: await response.json() };
  };
  return { ask, forwarded, lines, advance: (ms: number) => now += ms };
}

Deno.test("the eleventh DescribeStream within a second is answered 400 ThrottlingException, unforwarded", async () => {
  assert.equal(MAX_PER_SECOND, 10);
  const stack = served();
  for (let i = 0; i < MAX_PER_SECOND; i++) {
    assert.equal((await stack.ask()).status, 200, `call ${i + 1}`);
  }
  const throttled = await stack.ask();
  assert.equal(throttled.status, 400);
  assert.deepEqual(throttled.body, {
    __type: "com.amazon.coral.availability#ThrottlingException",
    message: "Rate exceeded",
  });
  assert.equal(stack.forwarded.length, MAX_PER_SECOND, "the throttled call reached nothing");
  assert.match(stack.lines[0], /DescribeStream of AKID\/us-east-1: 10 within the last 1000 ms/);
});

Deno.test("the second slides: a call is let through once the oldest of the ten is a second old", async () => {
  const stack = served();
  for (let i = 0; i < MAX_PER_SECOND; i++) {
    await stack.ask();
    stack.advance(50); // ten calls over 500 ms
  }
  stack.advance(WINDOW_MS - 500 - 1); // 1 ms short of a second after the first
  assert.equal((await stack.ask()).status, 400);
  stack.advance(1); // the first is a second old
  assert.equal((await stack.ask()).status, 200);
  assert.equal((await stack.ask()).status, 400, "the second call is still within its second");
  stack.advance(50);
  assert.equal((await stack.ask()).status, 200);
});

Deno.test("throttled calls do not count: a client that keeps asking is served once the second has passed", async () => {
  const stack = served();
  for (let i = 0; i < MAX_PER_SECOND; i++) await stack.ask();
  for (let i = 0; i < 100; i++) {
    stack.advance(9);
    assert.equal((await stack.ask()).status, 400);
  }
  stack.advance(WINDOW_MS - 900);
  assert.equal((await stack.ask()).status, 200);
});

Deno.test("every stream of an account and region shares the ten; another region or account has its own", async () => {
  const stack = served();
  const other = ARN.replace("table/t/", "table/u/");
  for (let i = 0; i < MAX_PER_SECOND / 2; i++) {
    await stack.ask();
    await stack.ask("DescribeStream", "AKID", "us-east-1", other);
  }
  assert.equal((await stack.ask()).status, 400);
  assert.equal((await stack.ask("DescribeStream", "AKID", "us-east-1", other)).status, 400);
  assert.equal((await stack.ask("DescribeStream", "AKID", "us-east-2")).status, 200);
  assert.equal((await stack.ask("DescribeStream", "OTHER", "us-east-1")).status, 200);
});

Deno.test("other Streams operations pass uncounted, throttled or not", async () => {
  const stack = served();
  for (let i = 0; i < MAX_PER_SECOND; i++) await stack.ask();
  for (const operation of ["GetShardIterator", "GetRecords", "ListStreams"]) {
    assert.equal((await stack.ask(operation)).status, 200, operation);
  }
  assert.equal((await stack.ask()).status, 400);
  assert.equal(stack.forwarded.length, MAX_PER_SECOND + 3);
});

Deno.test("the project's client reads the answer as throttling, which it retries with backoff", async () => {
  const response = rateExceeded();
  assert.equal(response.status, 400);
  assert.equal(response.headers.get("content-type"), "application/x-amz-json-1.0");
  const { __type } = await response.json();
  // The name the client (functions-shared/dynamo_http.ts) and the SDK take: after the '#'.
  assert.equal(retryKind(__type.slice(__type.lastIndexOf("#") + 1), 400, false), "throttling");
});
