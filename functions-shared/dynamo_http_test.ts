/**
 * The functions' DynamoDB client against a fake DynamoDB (a `Deno.serve` that answers as
 * AWS does): the request it sends, its retries, its errors, binaries both ways, the CRC.
 */

import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";
import { DYNAMO_MAX_ATTEMPTS } from "./dynamo_client.ts";
import {
  DescribeStreamCommand,
  GetItemCommand,
  GetRecordsCommand,
  ScanCommand,
} from "./dynamo_commands.ts";
import {
  DynamoClient,
  type DynamoClientConfig,
  type DynamoError,
  isRetryable,
} from "./dynamo_http.ts";
import { safeMessage } from "./dynamo_errors.ts";

interface Answer {
  status: number;
  type?: string;
  body?: unknown;
  /** A wrong x-amz-crc32. */
  badCrc?: boolean;
}

interface Seen {
  headers: Headers;
  body: string;
}

function fakeDynamo(answers: Answer[]) {
  const seen: Seen[] = [];
  const dates: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({ headers: req.headers, body: await req.text() });
    const answer = answers[Math.min(seen.length - 1, answers.length - 1)];
    const body = answer.type
      ? { __type: `com.amazonaws.dynamodb.v20120810#${answer.type}`, message: `${answer.type}!` }
      : answer.body ?? {};
    const text = JSON.stringify(body);
    // As AWS: the time of the answer (Deno's own Date may lag a second or more).
    const date = new Date().toUTCString();
    dates.push(date);
    return new Response(text, {
      status: answer.status,
      headers: {
        date,
        "content-type": "application/x-amz-json-1.0",
        "x-amzn-requestid": `req-${seen.length}`,
        "x-amz-crc32": String(answer.badCrc ? crc32(text) ^ 1 : crc32(text)),
      },
    });
  });
  const waits: number[] = [];
  const config: DynamoClientConfig = {
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
    maxAttempts: DYNAMO_MAX_ATTEMPTS,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
  const client = new DynamoClient(config);
  return { client, config, seen, waits, dates, close: () => server.shutdown() };
}

const get = new GetItemCommand({ TableName: "t", Key: { id: { S: "a" } } });

Deno.test("a request is DynamoDB's JSON protocol, signed for the service dynamodb", async () => {
  const fake = fakeDynamo([{ status: 200, body: { Item: { id: { S: "a" } } } }]);
  try {
    const answer = await fake.client.send(get);
    assert.deepEqual(answer.Item, { id: { S: "a" } });
    const { clock: _clock, ...metadata } = answer.$metadata;
    assert.deepEqual(metadata, { httpStatusCode: 200, requestId: "req-1", attempts: 1 });
    const [{ headers, body }] = fake.seen;
    assert.equal(headers.get("x-amz-target"), "DynamoDB_20120810.GetItem");
    assert.equal(headers.get("content-type"), "application/x-amz-json-1.0");
    assert.deepEqual(JSON.parse(body), { TableName: "t", Key: { id: { S: "a" } } });
    assert.match(
      headers.get("authorization")!,
      /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/dynamodb\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
    assert.match(headers.get("x-amz-date")!, /^\d{8}T\d{6}Z$/);
  } finally {
    await fake.close();
  }
});

Deno.test("headers of the configuration are sent with each request, unsigned", async () => {
  const fake = fakeDynamo([{ status: 200 }]);
  try {
    const client = new DynamoClient({ ...fake.config, headers: { "x-note": "mine" } });
    await client.send(get);
    assert.equal(fake.seen[0].headers.get("x-note"), "mine");
    assert.match(
      fake.seen[0].headers.get("authorization")!,
      /SignedHeaders=content-type;host;x-amz-date;x-amz-target,/,
    );
  } finally {
    await fake.close();
  }
});

Deno.test("a session token is sent and signed", async () => {
  const fake = fakeDynamo([{ status: 200 }]);
  try {
    const client = new DynamoClient({
      ...fake.config,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "s", sessionToken: "tok" },
    });
    await client.send(get);
    assert.equal(fake.seen[0].headers.get("x-amz-security-token"), "tok");
    assert.match(
      fake.seen[0].headers.get("authorization")!,
      /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,/,
    );
  } finally {
    await fake.close();
  }
});

Deno.test("without credentials nothing is sent, and the error says which secrets to set", async () => {
  const fake = fakeDynamo([{ status: 200 }]);
  try {
    const client = new DynamoClient({ ...fake.config, credentials: undefined });
    await assert.rejects(client.send(get), {
      name: "CredentialsProviderError",
      message:
        "GetItem on t: no AWS credentials: set the secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    });
    assert.equal(fake.seen.length, 0);
  } finally {
    await fake.close();
  }
});

Deno.test("an InternalServerError is retried until the attempts are spent, then thrown", async () => {
  const fake = fakeDynamo([{ status: 500, type: "InternalServerError" }]);
  try {
    await assert.rejects(fake.client.send(get), (e: DynamoError) => {
      assert.equal(e.name, "InternalServerError");
      assert.equal(e.message, "GetItem on t: InternalServerError!");
      assert.equal(e.$metadata.httpStatusCode, 500);
      assert.equal(e.$metadata.attempts, DYNAMO_MAX_ATTEMPTS);
      return true;
    });
    assert.equal(fake.seen.length, DYNAMO_MAX_ATTEMPTS);
    // Full jitter under 25 ms × 2^i.
    fake.waits.forEach((ms, i) => assert.ok(ms >= 0 && ms <= 25 * 2 ** i, `${ms}`));
  } finally {
    await fake.close();
  }
});

Deno.test("beforeRetry runs before each of the client's retries, never before the first attempt; its failure stops nothing", async () => {
  const fake = fakeDynamo([{ status: 500, type: "InternalServerError" }]);
  let held = 0;
  try {
    await assert.rejects(
      fake.client.send(get, {
        beforeRetry: () => {
          held++;
          return Promise.reject(new Error("the hold failed"));
        },
      }),
      (e: DynamoError) => e.name === "InternalServerError",
    );
    assert.equal(fake.seen.length, DYNAMO_MAX_ATTEMPTS);
    assert.equal(held, DYNAMO_MAX_ATTEMPTS - 1, "once before each retry");
  } finally {
    await fake.close();
  }
});

Deno.test("a throttled request is retried after a backoff of base 1 s, and then succeeds", async () => {
  const fake = fakeDynamo([
    { status: 400, type: "ProvisionedThroughputExceededException" },
    { status: 200, body: { Items: [], Count: 0 } },
  ]);
  try {
    const result = await fake.client.send(new ScanCommand({ TableName: "t" }));
    assert.deepEqual(result.Items, []);
    assert.equal(result.$metadata.attempts, 2);
    assert.equal(fake.seen.length, 2);
    assert.ok(fake.waits[0] <= 1000);
  } finally {
    await fake.close();
  }
});

Deno.test("an abort during a backoff ends the request then, with the abort's reason, not after the wait", async () => {
  const fake = fakeDynamo([{ status: 400, type: "ProvisionedThroughputExceededException" }]);
  // A backoff that ends only when the test says.
  const backoff = Promise.withResolvers<void>();
  fake.config.sleep = () => backoff.promise;
  const client = new DynamoClient(fake.config);
  try {
    const deadline = new AbortController();
    let settled: unknown = "not yet";
    const sent = client.send(new ScanCommand({ TableName: "t" }), {
      abortSignal: deadline.signal,
    }).then(() => (settled = "answered"), (e) => (settled = e));
    while (fake.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const reason = new DOMException("the deadline", "TimeoutError");
    deadline.abort(reason);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const atAbort = settled;
    backoff.resolve();
    await sent;
    assert.equal(atAbort, reason, "ended at the abort, in the backoff");
    assert.equal(fake.seen.length, 1, "no attempt after the abort");
  } finally {
    await fake.close();
  }
});

Deno.test("a validation error, a missing table and a failed condition are not retried", async () => {
  for (
    const type of [
      "ValidationException",
      "ResourceNotFoundException",
      "ConditionalCheckFailedException",
    ]
  ) {
    const fake = fakeDynamo([{ status: 400, type }]);
    try {
      await assert.rejects(fake.client.send(get), {
        name: type,
        message: `GetItem on t: ${type}!`,
      });
      assert.equal(fake.seen.length, 1, type);
    } finally {
      await fake.close();
    }
  }
});

Deno.test("an answer whose x-amz-crc32 does not match is retried, and then named", async () => {
  const fake = fakeDynamo([{ status: 200, body: { Item: { id: { S: "a" } } }, badCrc: true }]);
  try {
    await assert.rejects(fake.client.send(get), (e: DynamoError) => {
      assert.equal(e.name, "CRC32CheckFailed");
      assert.equal(
        e.message,
        "GetItem on t: the answer does not match its x-amz-crc32 (damaged on the way)",
      );
      return true;
    });
    assert.equal(fake.seen.length, DYNAMO_MAX_ATTEMPTS);
  } finally {
    await fake.close();
  }
});

Deno.test("the retry quota ends retries early once failures have spent it", async () => {
  const fake = fakeDynamo([{ status: 500, type: "InternalServerError" }]);
  try {
    // 500 tokens at 14 a retry: 35 retries, then none.
    let calls = 0;
    for (let i = 0; i < 10; i++) {
      await assert.rejects(fake.client.send(get));
      calls = fake.seen.length;
    }
    assert.equal(calls, 35 + 10, "35 retries, each request's first attempt besides");
  } finally {
    await fake.close();
  }
});

Deno.test("binaries are bytes here and base64 on the wire, both ways", async () => {
  const fake = fakeDynamo([{
    status: 200,
    body: {
      Items: [{ id: { B: "AAEC" }, set: { BS: ["AQ=="] }, deep: { M: { b: { B: "/w==" } } } }],
      LastEvaluatedKey: { id: { B: "AAEC" } },
    },
  }]);
  try {
    const page = await fake.client.send(
      new ScanCommand({ TableName: "t", ExclusiveStartKey: { id: { B: new Uint8Array([7, 8]) } } }),
    );
    assert.deepEqual(JSON.parse(fake.seen[0].body).ExclusiveStartKey, { id: { B: "Bwg=" } });
    assert.deepEqual(page.Items, [{
      id: { B: new Uint8Array([0, 1, 2]) },
      set: { BS: [new Uint8Array([1])] },
      deep: { M: { b: { B: new Uint8Array([255]) } } },
    }]);
    assert.deepEqual(page.LastEvaluatedKey, { id: { B: new Uint8Array([0, 1, 2]) } });
  } finally {
    await fake.close();
  }
});

Deno.test("a stream record's images get their bytes; its time stays in seconds", async () => {
  const record = {
    eventName: "INSERT",
    dynamodb: {
      ApproximateCreationDateTime: 1770379200,
      Keys: { id: { B: "AA==" } },
      NewImage: { id: { B: "AA==" } },
      SequenceNumber: "100",
    },
  };
  const fake = fakeDynamo([{ status: 200, body: { Records: [record], NextShardIterator: "n" } }]);
  try {
    const { Records } = await fake.client.send(new GetRecordsCommand({ ShardIterator: "i" }));
    assert.equal(fake.seen[0].headers.get("x-amz-target"), "DynamoDBStreams_20120810.GetRecords");
    assert.equal(Records![0].dynamodb!.ApproximateCreationDateTime, 1770379200);
    assert.deepEqual(Records![0].dynamodb!.Keys, { id: { B: new Uint8Array([0]) } });
  } finally {
    await fake.close();
  }
});

Deno.test("an aborted request is not retried", async () => {
  const fake = fakeDynamo([{ status: 200 }]);
  try {
    const controller = new AbortController();
    controller.abort(new Error("timed out"));
    await assert.rejects(fake.client.send(get, { abortSignal: controller.signal }));
    assert.equal(fake.seen.length, 0);
  } finally {
    await fake.close();
  }
});

Deno.test("a clock 10 minutes off is corrected from the service's Date, and the refused request retried", async () => {
  const serverAhead = 10 * 60_000;
  const seenDates: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    const signed = req.headers.get("x-amz-date")!;
    seenDates.push(signed);
    const signedMs = Date.UTC(
      +signed.slice(0, 4),
      +signed.slice(4, 6) - 1,
      +signed.slice(6, 8),
      +signed.slice(9, 11),
      +signed.slice(11, 13),
      +signed.slice(13, 15),
    );
    const serverNow = Date.now() + serverAhead;
    const skewed = Math.abs(serverNow - signedMs) > 5 * 60_000;
    const body = skewed
      ? {
        __type: "com.amazon.coral.service#InvalidSignatureException",
        message: "Signature expired",
      }
      : {};
    return new Response(JSON.stringify(body), {
      status: skewed ? 400 : 200,
      headers: { date: new Date(serverNow).toUTCString() },
    });
  });
  try {
    const client = new DynamoClient({
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${server.addr.port}`,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "s" },
      maxAttempts: DYNAMO_MAX_ATTEMPTS,
      sleep: () => Promise.resolve(),
    });
    const answer = await client.send(get);
    assert.equal(answer.$metadata.attempts, 2);
    assert.equal(seenDates.length, 2);
    // The next request is signed at the service's time from the start.
    await client.send(get);
    assert.equal(seenDates.length, 3);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a success after retries gives back what its retry took from the quota", async () => {
  // Each request throttled once, then answered: 5 taken, 5 given back. Without the
  // refund, 100 such requests would leave 0 of the 500, and the next throttle unretried.
  const answers: Answer[] = [];
  for (let i = 0; i < 110; i++) {
    answers.push({ status: 400, type: "ThrottlingException" }, { status: 200 });
  }
  const fake = fakeDynamo(answers);
  try {
    for (let i = 0; i < 110; i++) {
      const answer = await fake.client.send(get);
      assert.equal(answer.$metadata.attempts, 2, `request ${i}`);
    }
  } finally {
    await fake.close();
  }
});

Deno.test("no answer is a NetworkingError naming the operation and host, retried, then thrown", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  const waits: number[] = [];
  const client = new DynamoClient({
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "s3cret-value" },
    maxAttempts: 3,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  });
  await assert.rejects(client.send(new ScanCommand({ TableName: "things" })), (e: DynamoError) => {
    assert.equal(e.name, "NetworkingError");
    assert.match(
      e.message,
      new RegExp(`^Scan on things: no answer from 127\\.0\\.0\\.1:${port}: `),
    );
    assert.ok(!e.message.includes("s3cret-value"));
    assert.ok(isRetryable(e));
    return true;
  });
  assert.equal(waits.length, 2, "retried until the attempts were spent");
});

Deno.test("a signature refusal's echo of the request is cut, and no secret is quoted", () => {
  const message = "The request signature we calculated does not match.\n\n" +
    "The Canonical String for this request should have been\n'POST\n/\nx-amz-security-token:TOKEN123\n'";
  assert.equal(
    safeMessage(message, ["TOKEN123"]),
    "The request signature we calculated does not match.",
  );
  assert.equal(
    safeMessage("token TOKEN123 here", ["TOKEN123", undefined]),
    "token [redacted] here",
  );
});

Deno.test("an attempt with no answer is abandoned after its timeout and retried, then a TimeoutError", async () => {
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    calls++;
    await req.body?.cancel();
    // Answers long after the client gave up.
    await new Promise((resolve) => setTimeout(resolve, 600));
    return new Response("{}");
  });
  try {
    const client = new DynamoClient({
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${server.addr.port}`,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "s" },
      maxAttempts: 2,
      attemptTimeoutMs: 100,
      sleep: () => Promise.resolve(),
    });
    await assert.rejects(client.send(get), (e: DynamoError) => {
      assert.equal(e.name, "TimeoutError");
      assert.match(e.message, /^GetItem on t: no answer from 127\.0\.0\.1:\d+ within 100 ms$/);
      assert.equal(e.$metadata.attempts, 2);
      return true;
    });
    // At most one request an attempt: a starved process may abort an attempt before the
    // server has read it, so the client's count above is the one that proves the retry.
    assert.ok(calls <= 2, `${calls} requests`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a Streams request's error names the stream's table", async () => {
  const fake = fakeDynamo([{ status: 400, type: "ResourceNotFoundException" }]);
  try {
    const arn =
      "arn:aws:dynamodb:us-east-1:123456789012:table/things/stream/2026-11-30T00:00:00.000";
    await assert.rejects(fake.client.send(new DescribeStreamCommand({ StreamArn: arn })), {
      name: "ResourceNotFoundException",
      message: "DescribeStream on things: ResourceNotFoundException!",
    });
  } finally {
    await fake.close();
  }
});

Deno.test("the client prints no secret", () => {
  const client = new DynamoClient({
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "very-secret" },
    maxAttempts: 1,
  });
  assert.ok(!Deno.inspect(client, { depth: 10 }).includes("very-secret"));
  assert.ok(!JSON.stringify(client).includes("very-secret"));
});

Deno.test("each answer carries its own exchange's Date and round trip, for a read's stamp", async () => {
  const fake = fakeDynamo([{ status: 200, body: {} }]);
  try {
    const before = performance.now();
    const answer = await fake.client.send(get);
    const took = performance.now() - before;
    const clock = answer.$metadata.clock!;
    assert.ok(0 <= clock.roundTripMs && clock.roundTripMs <= took, `${clock.roundTripMs} ms`);
    assert.equal(clock.serverMs, Date.parse(fake.dates[0]), "the answer's Date");
  } finally {
    await fake.close();
  }
});

Deno.test("a round trip is measured on a monotonic clock: a wall clock stepped back in flight changes nothing", async () => {
  const fake = fakeDynamo([{ status: 200, body: {} }]);
  const realNow = Date.now;
  // The host's clock is 2 s fast until the request reaches DynamoDB, then stepped back to
  // the right time while the answer is on its way.
  Date.now = () => realNow() + (fake.seen.length === 0 ? 2_000 : 0);
  try {
    const clock = (await fake.client.send(get)).$metadata.clock!;
    assert.ok(clock.roundTripMs >= 0, `${clock.roundTripMs} ms`);
  } finally {
    Date.now = realNow;
    await fake.close();
  }
});
