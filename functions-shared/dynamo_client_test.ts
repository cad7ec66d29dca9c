/**
 * The clients this project makes: the reader's and the writer's keys, never crossed.
 * (The client's retries: dynamo_http_test.ts.)
 */

import assert from "node:assert/strict";
import {
  awsClientConfig,
  dynamoClients,
  dynamoEndpoint,
  NO_WRITER_KEY,
  writerClients,
} from "./dynamo_client.ts";
import { GetItemCommand } from "./dynamo_commands.ts";

Deno.test("the writer's clients sign with the writer's own key, never the reader's", async () => {
  const signedBy: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    signedBy.push(
      `${
        /Credential=([^/]+)\/\d{8}\/([^/]+)\//.exec(req.headers.get("authorization") ?? "")?.slice(
          1,
        )
      } ` +
        `token:${req.headers.get("x-amz-security-token") ?? "none"}`,
    );
    return Response.json({});
  });
  try {
    const env: Record<string, string> = {
      AWS_ACCESS_KEY_ID: "READERKEY",
      AWS_SECRET_ACCESS_KEY: "reader-secret",
      AWS_SESSION_TOKEN: "reader-token",
      DYNAMODB_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
    };
    assert.equal(writerClients((n) => env[n])("us-east-1"), NO_WRITER_KEY, "no key: why");
    env.WRITE_BACK_AWS_ACCESS_KEY_ID = " WRITERKEY\n";
    env.WRITE_BACK_AWS_SECRET_ACCESS_KEY = "writer-secret";
    const writer = writerClients((n) => env[n])("us-east-2");
    assert.ok(typeof writer !== "string");
    const get = new GetItemCommand({ TableName: "t", Key: { id: { S: "a" } } });
    await writer.send(get);
    await dynamoClients((n) => env[n])("us-east-1").send(get);
    assert.deepEqual(signedBy, [
      "WRITERKEY,us-east-2 token:none",
      "READERKEY,us-east-1 token:reader-token",
    ], "the reader's session token is not borrowed; keys are trimmed");
  } finally {
    await server.shutdown();
  }
});

Deno.test("half a key pair is refused, naming the half that is missing", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.throws(
    () => awsClientConfig(env({ AWS_ACCESS_KEY_ID: "AKIDEXAMPLE" }), "us-east-1"),
    /^Error: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither$/,
  );
  assert.throws(
    () => awsClientConfig(env({ AWS_SECRET_ACCESS_KEY: "s3cr3t" }), "us-east-1"),
    /AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not/,
  );
  assert.equal(awsClientConfig(env({}), "us-east-1").region, "us-east-1", "neither: the chain");
});

Deno.test("a credential with a line break inside is refused naming the setting, never its value", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const token = "IQoJb3JpZ2luX2VjEJr\nPART-TWO-OF-THE-TOKEN";
  for (
    const [vars, name] of [
      [{ AWS_ACCESS_KEY_ID: "AKID EXAMPLE", AWS_SECRET_ACCESS_KEY: "s" }, "AWS_ACCESS_KEY_ID"],
      [{ AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s\u00e9" }, "AWS_SECRET_ACCESS_KEY"],
      [
        { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s", AWS_SESSION_TOKEN: token },
        "AWS_SESSION_TOKEN",
      ],
    ] as const
  ) {
    assert.throws(() => awsClientConfig(env(vars), "us-east-1"), (error: Error) => {
      assert.match(error.message, new RegExp(`^${name} holds a character no credential has`));
      assert.ok(!error.message.includes("PART-TWO") && !error.message.includes("AKID"));
      return true;
    });
  }
  assert.equal(
    awsClientConfig(env({ AWS_ACCESS_KEY_ID: " AKID\n", AWS_SECRET_ACCESS_KEY: "s\n" }), "x")
      .credentials?.accessKeyId,
    "AKID",
    "a newline at the end is trimmed",
  );
  // The reader's clients refuse at once, when made at cold start (cold_start.ts answers
  // every request 503, naming the setting).
  assert.throws(
    () => dynamoClients(env({ AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "a\nb" })),
    /^Error: AWS_SECRET_ACCESS_KEY holds a character no credential has/,
  );
  assert.throws(
    () => dynamoClients(env({ AWS_ACCESS_KEY_ID: "AKID" })),
    /AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not/,
  );
  // The writer's: each write-back names the cause; the function boots.
  const writer = writerClients(
    env({ WRITE_BACK_AWS_ACCESS_KEY_ID: "AKID", WRITE_BACK_AWS_SECRET_ACCESS_KEY: "a\nb" }),
  );
  assert.match(String(writer("us-east-1")), /^WRITE_BACK_AWS_SECRET_ACCESS_KEY holds a character/);
});

Deno.test("DYNAMODB_ENDPOINT: unset, or an http(s) URL, https unless on this machine", () => {
  const env = (value?: string) => (name: string) =>
    name === "DYNAMODB_ENDPOINT" ? value : undefined;
  assert.equal(dynamoEndpoint(env(undefined)), undefined);
  assert.equal(dynamoEndpoint(env(" ")), undefined);
  assert.equal(dynamoEndpoint(env("http://127.0.0.1:8000")), "http://127.0.0.1:8000");
  assert.equal(dynamoEndpoint(env("http://localhost:8000")), "http://localhost:8000");
  assert.equal(
    dynamoEndpoint(env("https://dynamodb.us-east-1.amazonaws.com")),
    "https://dynamodb.us-east-1.amazonaws.com",
  );
  assert.throws(
    () => dynamoClients(env("dynamodb.us-east-1.amazonaws.com")),
    /DYNAMODB_ENDPOINT must be an http\(s\) URL .* \(it is "dynamodb\.us-east-1\.amazonaws\.com"\)/,
    "a value without its scheme stops the cold start, naming the setting",
  );
  assert.throws(
    () => dynamoEndpoint(env("http://dynamodb.example.com")),
    /DYNAMODB_ENDPOINT must be https for a host other than this machine's/,
  );
  assert.throws(() => dynamoEndpoint(env("ftp://127.0.0.1")), /must be an http\(s\) URL/);
  // Credentials in the URL are never quoted.
  assert.throws(
    () => dynamoEndpoint(env("http://AKIAEXAMPLE:s3cr3t@proxy.corp:8000")),
    (error: Error) => {
      assert.match(
        error.message,
        /\(it has a user name or password: "http:\/\/\*\*\*@proxy\.corp:8000"\)/,
      );
      assert.ok(!error.message.includes("s3cr3t") && !error.message.includes("AKIA"));
      return true;
    },
  ); // Nor a password the URL parser reads as a port and a fragment (it finds none to hide),
  // and the endpoint is refused for what it has: an origin only.
  assert.throws(
    () => dynamoEndpoint(env("http://admin:4242#s3cr3t@127.0.0.1:8000")),
    (error: Error) => {
      assert.match(
        error.message,
        /\(it has a fragment \(#\.\.\.\): "http:\/\/\*\*\*@127\.0\.0\.1:8000"\)/,
      );
      assert.ok(!error.message.includes("s3cr3t"), error.message);
      return true;
    },
  );
  assert.throws(
    () => dynamoEndpoint(env("http://127.0.0.1:8000/dynamo")),
    /it has a path \(\/dynamo\)/,
  );
  assert.throws(() => dynamoEndpoint(env("http://127.0.0.1:8000?a=b")), /it has a query/);
});

Deno.test("DYNAMODB_ATTEMPT_TIMEOUT_MS sets how long an attempt waits, 30 s unless set, a whole number of ms from 1,000 to 120,000", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(awsClientConfig(env({}), "us-east-1").attemptTimeoutMs, 30_000);
  assert.equal(
    awsClientConfig(env({ DYNAMODB_ATTEMPT_TIMEOUT_MS: " 2000 " }), "us-east-1").attemptTimeoutMs,
    2_000,
  );
  for (const bad of ["500", "2.5s", "200000"]) {
    assert.throws(
      () => awsClientConfig(env({ DYNAMODB_ATTEMPT_TIMEOUT_MS: bad }), "us-east-1"),
      new RegExp(
        `DYNAMODB_ATTEMPT_TIMEOUT_MS is ${
          JSON.stringify(bad)
        }; it must be a whole number from 1000 to 120000`,
      ),
    );
  }
});
