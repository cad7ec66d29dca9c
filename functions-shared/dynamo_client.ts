/**
 * The one way this project configures a client of DynamoDB (or its Streams): the Edge
 * Functions and the scripts use {@link dynamoClients} (the repository's own client,
 * dynamo_http.ts), the local stack and the tests build AWS SDK clients from
 * {@link awsClientConfig}; both read the environment given: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN, and DYNAMODB_ENDPOINT for the local
 * stack. Credentials are given explicitly when set: the SDK's default chain looks for
 * files an Edge Function lacks.
 *
 * Retries (`DYNAMO_MAX_ATTEMPTS`, the SDK's "standard" mode, which dynamo_http.ts follows):
 * up to 5 attempts in all for throttling errors (ProvisionedThroughputExceededException,
 * ThrottlingException, …) and transient ones (HTTP 5xx such as InternalServerError, a
 * failed connection), none for the rest (ValidationException, ResourceNotFoundException,
 * …). Between attempts a full-jitter exponential backoff, random × min(base × 2^i, 20 s),
 * with a base of 1 s after throttling and 25 ms otherwise (the SDK's DynamoDB clients), as AWS advises ("Error handling
 * with DynamoDB", error retries and exponential backoff); each retry also spends from the
 * client's retry quota (500; 5 per throttling retry, 14 per other), refilled by successes,
 * so a client facing a failing service stops retrying early rather than piling on. The last
 * error reaches the caller: the import-worker adds its own bounded rounds on top
 * (functions-shared/scan_pacing.ts). functions-shared/dynamo_client_test.ts proves the
 * attempt counts against a fake DynamoDB.
 *
 * @module
 */

import { ATTEMPT_TIMEOUT_MS, DynamoClient } from "./dynamo_http.ts";
import { endpointProblem, headerSafe, integer, readSettings, withoutUserinfo } from "./settings.ts";

/** Reads an environment variable (Deno's or, in Node, the process's). */
export type EnvReader = (name: string) => string | undefined;

/** Attempts per request, the first included (see above). */
export const DYNAMO_MAX_ATTEMPTS = 5;

/** Loopback hosts, where an http:// endpoint (DynamoDB Local, the local stack) is fine. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * DYNAMODB_ENDPOINT, checked: unset (AWS's regional endpoints), or an http(s) URL, https
 * unless its host is this machine's. Throws an Error naming the setting and what is wrong:
 * a value without its scheme failed every call with "Invalid URL", naming no setting, and
 * an http:// endpoint elsewhere sent the items and the request's session token in the
 * clear.
 */
export function dynamoEndpoint(env: EnvReader): string | undefined {
  const value = env("DYNAMODB_ENDPOINT")?.trim();
  if (!value) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const notAnEndpoint = (what: string) =>
    new Error(
      `DYNAMODB_ENDPOINT must be an http(s) URL such as http://127.0.0.1:8000, or unset for AWS's own (it ${what} ${
        JSON.stringify(withoutUserinfo(value))
      })`,
    );
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) throw notAnEndpoint("is");
  const problem = endpointProblem(url);
  if (problem) throw notAnEndpoint(`${problem}:`);
  if (url.protocol === "http:" && !LOOPBACK.has(url.hostname)) {
    throw new Error(
      `DYNAMODB_ENDPOINT must be https for a host other than this machine's (it is ${
        JSON.stringify(withoutUserinfo(value))
      }): items and credentials would cross the network unencrypted`,
    );
  }
  return value;
}

/**
 * Setting `name` of `env`, trimmed (a secret pasted with its newline), and refused when a
 * character inside it cannot go into an HTTP header ({@link headerSafe}).
 */
export function credentialSetting(env: EnvReader, name: string): string | undefined {
  const value = env(name)?.trim();
  return value ? headerSafe(name, value) : value;
}

/**
 * How long one attempt of a DynamoDB request waits for its answer before it is retried
 * (dynamo_http.ts): AWS's advice for "intermittent timeout errors" and latency spikes is to
 * tune the client's timeouts and retries to the workload
 * (https://repost.aws/knowledge-center/dynamodb-intermittent-timeout-errors).
 */
const CLIENT_SETTINGS = {
  attemptTimeoutMs: integer(
    "DYNAMODB_ATTEMPT_TIMEOUT_MS",
    "milliseconds one attempt of a DynamoDB request waits for its answer before it is retried",
    ATTEMPT_TIMEOUT_MS,
    1_000,
    120_000,
  ),
};

/** The configuration of a DynamoDB (or DynamoDB Streams) client of `region`. */
export function awsClientConfig(env: EnvReader, region: string) {
  const { attemptTimeoutMs } = readSettings(env, CLIENT_SETTINGS);
  const accessKeyId = credentialSetting(env, "AWS_ACCESS_KEY_ID");
  const secretAccessKey = credentialSetting(env, "AWS_SECRET_ACCESS_KEY");
  // Half a pair is a mistake to name: the AWS SDK would go on to its default chain (a
  // profile of ~/.aws, say), and this project's own client would refuse naming neither.
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    const [set, missing] = accessKeyId
      ? ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
      : ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"];
    throw new Error(`${set} is set but ${missing} is not: set both, or neither`);
  }
  return {
    region,
    endpoint: dynamoEndpoint(env),
    maxAttempts: DYNAMO_MAX_ATTEMPTS,
    attemptTimeoutMs,
    retryMode: "standard",
    ...(accessKeyId && secretAccessKey
      ? {
        credentials: {
          accessKeyId,
          secretAccessKey,
          sessionToken: credentialSetting(env, "AWS_SESSION_TOKEN") || undefined,
        },
      }
      : {}),
  };
}

/**
 * Returns a function that gives one client per region, made by `make` on first use and
 * kept: each AWS client holds its own keep-alive sockets, so a client made per call
 * leaks them.
 */
export function perRegion<T>(make: (region: string) => T): (region: string) => T {
  const clients = new Map<string, T>();
  return (region) => {
    let client = clients.get(region);
    if (client === undefined) {
      client = make(region);
      clients.set(region, client);
    }
    return client;
  };
}

/** Returns a function that gives the (cached) DynamoDB client of a region. */
export function dynamoClients(env: EnvReader): (region: string) => DynamoClient {
  // Checked once, at cold start (the endpoint, and the key pair: a half, or a character
  // no credential has), so that the function answers every request 503 naming the
  // setting (cold_start.ts), not each request's work failing on it.
  awsClientConfig(env, "");
  return perRegion((region) => new DynamoClient(awsClientConfig(env, region)));
}

/** Why the write-back has no writer client: its own key is not set. */
export const NO_WRITER_KEY =
  'no writer credentials: set the function secrets WRITE_BACK_AWS_ACCESS_KEY_ID and WRITE_BACK_AWS_SECRET_ACCESS_KEY (README, "The writer\'s key")';

/**
 * The write-back's clients (docs/sync-semantics.md, "Admin edits"): the same
 * configuration as {@link dynamoClients}, with the writer's own key
 * (WRITE_BACK_AWS_ACCESS_KEY_ID, WRITE_BACK_AWS_SECRET_ACCESS_KEY: an identity allowed
 * only UpdateItem of the mapped attributes) in place of the reader's, never falling back
 * to it; without that key, {@link NO_WRITER_KEY} for every region.
 */
export function writerClients(env: EnvReader): (region: string) => DynamoClient | string {
  let accessKeyId: string | undefined;
  let secretAccessKey: string | undefined;
  try {
    accessKeyId = credentialSetting(env, "WRITE_BACK_AWS_ACCESS_KEY_ID");
    secretAccessKey = credentialSetting(env, "WRITE_BACK_AWS_SECRET_ACCESS_KEY");
  } catch (error) {
    // As a missing key: each write-back names the cause, the function still boots.
    const problem = (error as Error).message;
    return () => problem;
  }
  if (!accessKeyId || !secretAccessKey) return () => NO_WRITER_KEY;
  const writerEnv: EnvReader = (name) => {
    if (name === "AWS_ACCESS_KEY_ID") return accessKeyId;
    if (name === "AWS_SECRET_ACCESS_KEY") return secretAccessKey;
    if (name === "AWS_SESSION_TOKEN") return undefined;
    return env(name);
  };
  return perRegion((region) => new DynamoClient(awsClientConfig(writerEnv, region)));
}
