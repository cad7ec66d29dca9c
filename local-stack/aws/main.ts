/**
 * The DynamoDB proxy's process (started by `stack:up` as one of its Deno parts):
 * listens at DYNAMODB_PORT (the stack's DYNAMODB_ENDPOINT) and forwards to DynamoDB Local
 * at DYNAMODB_INTERNAL_PORT, with the faults of DYNAMODB_FAULTS in `.local/stack.env`,
 * giving stream records the second their write passed it (local-stack/aws/stream_times.ts),
 * answering polls of idle streams itself (local-stack/aws/idle_polls.ts), closing and
 * splitting streams' shards on request (local-stack/aws/stream_shards.ts), throttling the
 * reads of a shard that more than two readers read at once (local-stack/aws/shard_readers.ts),
 * throttling DescribeStream past AWS's 10 a second (local-stack/aws/describe_limit.ts),
 * and serving point-in-time recovery and exports to the S3 stand-in (local-stack/aws/exports.ts);
 * before any of it, each request's signature is checked as DynamoDB checks it
 * (local-stack/aws/dynamodb_auth.ts: the stack's three keys are the ones known), then its
 * ARNs made DynamoDB Local's and its answer's those of the region it was signed for
 * (region_arns.ts: DynamoDB Local names every ARN's region `ddblocal`, AWS the real one)
 * and its streams' sequence numbers shaped as AWS's (sequence_edge.ts: DynamoDB Local
 * writes 21 zero-padded digits, AWS 21 to 40),
 * then the functions' reader's and writer's held to their IAM policies (dynamodb_iam.ts).
 * A share of DynamoDB's requests hang first, with `stall_rate`, and the next writes of a
 * table a test names at `POST /__local/dynamodb/stalls` (local-stack/aws/stalls.ts).
 * `GET /_stack/stream-writes` tells the stack's poller of the writes answered
 * (local-stack/aws/stream_watch.ts). `GET /_stack/stream-times` answers how many records
 * were timed to the second and how many kept DynamoDB Local's minute (logged too, once a
 * minute when they changed).
 *
 * @module
 */

import { DYNAMODB_INTERNAL_PORT, DYNAMODB_PORT, EXPORT_BUCKET, HOST } from "../config.ts";
import { readStackEnv } from "../stack_env.ts";
import { dynamoLocalPid } from "./dynamodb.ts";
import { decideError, FOLLOW_UP_HEADER } from "./errors.ts";
import { describeFaults, parseFaults } from "./faults.ts";
import { authenticatedDynamo } from "./dynamodb_auth.ts";
import { authorizedDynamo } from "./dynamodb_iam.ts";
import { exporterIdentity, readerIdentity, writerIdentity } from "./iam_policies.ts";
import { TABLES } from "../../functions-shared/table_registry.ts";
import { TableExports } from "./exports.ts";
import { createProxy } from "./proxy.ts";
import { IdlePolls } from "./idle_polls.ts";
import { STREAM_WRITES_PATH, WATCH_WAIT_MS } from "./stream_watch.ts";
import { s3Client } from "./s3_client.ts";
import { s3Storage } from "./s3_storage.ts";
import { putObjectDenied, stackS3Policies } from "./s3_iam.ts";
import { callUpstream } from "./upstream.ts";
import { StreamTrim, TRIM_PATH } from "./stream_trim.ts";
import { GAPS_PATH, StreamGaps } from "./stream_gaps.ts";
import { SHARDS_PATH, STREAM_SHARDS_FILE, StreamShards } from "./stream_shards.ts";
import { ShardReaders } from "./shard_readers.ts";
import { DescribeLimit } from "./describe_limit.ts";
import { namedRegion, regionEdge } from "./region_arns.ts";
import { sequenceEdge } from "./sequence_edge.ts";
import { credentialOf } from "./scope.ts";
import { StreamTimes } from "./stream_times.ts";
import { AskedStalls, stalledDynamo, STALLS_PATH } from "./stalls.ts";

let faults;
const env = readStackEnv();
try {
  faults = parseFaults(env.DYNAMODB_FAULTS);
} catch (error) {
  console.error((error as Error).message);
  Deno.exit(2);
}
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
const streamTimes = new StreamTimes();
const idlePolls = new IdlePolls();
const upstream = `http://${HOST}:${DYNAMODB_INTERNAL_PORT}`;
const proxy = createProxy({
  upstream,
  faults,
  log,
  streamTimes,
  idlePolls,
  // A DynamoDB Local started again has forgotten its tables (it keeps them in memory).
  upstreamEpoch: () => String(dynamoLocalPid() ?? ""),
});
// PITR and exports to the S3 stand-in, which DynamoDB Local lacks (local-stack/aws/exports.ts);
// an export's items written within its window are as at their own moments, taken from the
// proxy's recent writes (local-stack/aws/export_moments.ts).
const s3Policies = stackS3Policies(env.AWS_EXPORTER_ACCESS_KEY_ID, EXPORT_BUCKET);
const exports = new TableExports({
  upstream: (headers, operation, body) => callUpstream(upstream, headers, operation, body),
  // Written as the export's requester: the exporter's key needs its own s3:PutObject.
  storage: {
    ...s3Storage(s3Client(env.S3_ENDPOINT)),
    putDenied: (keyId, bucket, key) => putObjectDenied(s3Policies, keyId, bucket, key),
  },
  versions: proxy.recentWrites,
  log,
  decideError: (target) => decideError(target, faults.errorRate, Math.random),
});
// Streams trimmed on request, as AWS trims them after 24 h (local-stack/aws/stream_trim.ts).
const trim = new StreamTrim(log);
if (faults.staleMs > 0) {
  setInterval(() => proxy.history.sweep(Date.now()), Math.max(faults.staleMs, 1000));
}
// The recent writes forget what is older than their 4 minutes (export_moments.ts, history.ts).
setInterval(() => proxy.recentWrites.sweep(Date.now()), 30_000);
// Shards closed and split on request, as AWS closes and splits them
// (local-stack/aws/stream_shards.ts): outside the trim, which sees DynamoDB Local's shard.
const shards = new StreamShards({
  file: STREAM_SHARDS_FILE,
  accessKeyId: env.AWS_ACCESS_KEY_ID,
  trimmedThrough: (streamArn) => trim.trimmedThrough(streamArn),
  log,
});
// At most two readers of a shard at once, as AWS (local-stack/aws/shard_readers.ts):
// outside the shards, whose iterators it marks with their reader.
// The stack's poller, while its watch of the writes is on, reads a shard whose polls it
// leaves out (stream_watch.ts): a watch answered within the last second counts as on.
let watches = 0;
let watchedAt = 0;
const readers = new ShardReaders({
  log,
  mapping: {
    mark: () => idlePolls.instance,
    watching: () => watches > 0 || Date.now() - watchedAt < 1_000,
  },
});
// At most 10 DescribeStream a second per account and region, as AWS
// (local-stack/aws/describe_limit.ts): outside everything, so that the shards' own calls
// are not counted.
const describeLimit = new DescribeLimit({ log });
// Empty pages in the middle of a shard, on request, as AWS may answer them
// (local-stack/aws/stream_gaps.ts): outside the readers, whose iterators it marks after
// their own mark.
const gaps = new StreamGaps({ log });
const serve = (request: Request) =>
  describeLimit.handle(request, (o) =>
    gaps.handle(o, (p) =>
      readers.handle(
        p,
        (q) => shards.handle(q, (r) => trim.handle(r, (t) => exports.handle(t, proxy.handle))),
      )));
// The stack's control paths, unsigned: the region the ARN they are given names; the
// sequence numbers they take and give AWS's, as their clients saw them (sequence_edge.ts).
const control = regionEdge(sequenceEdge(serve), (_, body) => namedRegion(body));
// Every DynamoDB request signed with a key of the stack, checked as DynamoDB checks it;
// then its ARNs made DynamoDB Local's, and its answer's the region's it was signed for
// (local-stack/aws/region_arns.ts: everything behind works on DynamoDB Local's), and its
// streams' sequence numbers shaped as AWS's, of 21 to 40 digits, and back
// (local-stack/aws/sequence_edge.ts, the same way); then the functions' reader and writer, and the operator's exporter, held to their policies, as
// IAM holds them (local-stack/aws/dynamodb_iam.ts).
const checked = authenticatedDynamo(
  regionEdge(
    sequenceEdge(authorizedDynamo(serve, {
      identities: {
        [env.AWS_READER_ACCESS_KEY_ID]: readerIdentity(TABLES),
        [env.AWS_WRITER_ACCESS_KEY_ID]: writerIdentity(TABLES),
        [env.AWS_EXPORTER_ACCESS_KEY_ID]: exporterIdentity(TABLES),
      },
      databaseKeyId: env.AWS_ACCESS_KEY_ID,
    })),
    (request) => credentialOf(request.headers)?.region,
  ),
  {
    secrets: {
      [env.AWS_ACCESS_KEY_ID]: env.AWS_SECRET_ACCESS_KEY,
      [env.AWS_READER_ACCESS_KEY_ID]: env.AWS_READER_SECRET_ACCESS_KEY,
      [env.AWS_WRITER_ACCESS_KEY_ID]: env.AWS_WRITER_SECRET_ACCESS_KEY,
      [env.AWS_EXPORTER_ACCESS_KEY_ID]: env.AWS_EXPORTER_SECRET_ACCESS_KEY,
    },
  },
);
// A share of DynamoDB's requests hang (stall_rate, stall_ms; local-stack/aws/stalls.ts):
// outermost, where a client's going away is seen.
// A test's own stalls of a table's next writes (STALLS_PATH) go the same way.
const askedStalls = new AskedStalls();
const signed = stalledDynamo(checked, { faults, asked: askedStalls, log });
let logged = "";
setInterval(() => {
  streamTimes.sweep(Date.now());
  const { recentUnmatched, ...numbers } = streamTimes.counts();
  const counts = JSON.stringify(numbers);
  if (counts === logged) return;
  log(
    `stream records timed: ${logged = counts}; recently unmatched: ${recentUnmatched.join("; ")}`,
  );
}, 60_000);
/**
 * The answer with its `Date` as AWS sends it: the time it is answered. Deno's server adds
 * a `Date` of its own, cached and refreshed by a timer, and so up to a second or more
 * behind on a busy machine (seen 1.5 s): a Scan page stamped from it
 * (functions-shared/read_stamp.ts) would be stamped that much earlier than AWS's would.
 * Every answer has one, the exports' too: an export request tells whether an ended export
 * is its own on this clock (scripts/export_request.ts).
 */
function withDate(response: Response): Response {
  const headers = new Headers(response.headers);
  headers.set("date", new Date().toUTCString());
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

Deno.serve({
  hostname: HOST,
  port: DYNAMODB_PORT,
  onListen: () =>
    log(
      `dynamodb proxy on ${HOST}:${DYNAMODB_PORT} → DynamoDB Local on ${DYNAMODB_INTERNAL_PORT}; ` +
        `signatures checked; faults: ${describeFaults(faults)}`,
    ),
}, async (request) => {
  const path = new URL(request.url).pathname;
  // The writes answered so far, for the stack's poller (stream_watch.ts): a long poll.
  if (request.method === "GET" && path === STREAM_WRITES_PATH) {
    const query = new URL(request.url).searchParams;
    const seen = {
      instance: query.get("instance") ?? undefined,
      version: Number(query.get("version") ?? Number.NaN),
    };
    watches++;
    try {
      return Response.json(await idlePolls.watch(seen, WATCH_WAIT_MS, request.signal));
    } finally {
      watches--;
      watchedAt = Date.now();
    }
  }
  if (request.method === "GET" && path === "/_stack/stream-times") {
    return Response.json(
      streamTimes.counts(new URL(request.url).searchParams.get("key") ?? undefined),
    );
  }
  // The stalls a test asks for of a table's next writes (local-stack/aws/stalls.ts).
  if (path === STALLS_PATH) return await askedStalls.control(request);
  // The mark of the stand-in's own follow-ups (errors.ts) is not a client's to send.
  if (request.headers.has(FOLLOW_UP_HEADER)) {
    const headers = new Headers(request.headers);
    headers.delete(FOLLOW_UP_HEADER);
    request = new Request(request, { headers });
  }
  try {
    // The stack's own paths (the streams' trim, shards and gaps, and the counts above) are not
    // DynamoDB's: unsigned.
    const own = path === TRIM_PATH || path === SHARDS_PATH || path === GAPS_PATH;
    if (!own) return withDate(await signed(request));
    // A trim or a shard closed changes what polls of any table answer: the stack's poller
    // polls them all again (stream_watch.ts). They name the region by the ARN they are
    // given, as DescribeTable answered it (region_arns.ts).
    try {
      return withDate(await control(request));
    } finally {
      idlePolls.written([]);
    }
  } catch (error) {
    // DynamoDB Local unreachable or answering nonsense: a 500 as AWS would, said plainly.
    log(`request failed: ${(error as Error).message}`);
    return new Response(
      JSON.stringify({
        __type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
        message: `the local stack's DynamoDB proxy could not reach DynamoDB Local: ${
          (error as Error).message
        }`,
      }),
      { status: 500, headers: { "content-type": "application/x-amz-json-1.0" } },
    );
  }
});
