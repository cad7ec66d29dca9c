/**
 * The S3 stand-in's process (started by `stack:up` as one of its Deno parts): s3rver
 * (local-stack/aws/s3_server.ts) over `.local/s3/`, with the export bucket
 * (EXPORT_BUCKET) made, so that the stack's DynamoDB exports have somewhere to go; and in
 * front of it, at S3_PORT, the faults S3 has and s3rver has not (local-stack/aws/s3_faults.ts).
 *
 * @module
 */

import { EXPORT_BUCKET, HOST, S3_DIR, S3_PORT } from "../config.ts";
import { DEFAULT_S3_FAULTS, faultyS3 } from "./s3_faults.ts";
import { startS3Server } from "./s3_server.ts";

Deno.mkdirSync(S3_DIR, { recursive: true });
const server = await startS3Server({
  host: HOST,
  port: 0,
  directory: S3_DIR,
  buckets: [EXPORT_BUCKET],
});
Deno.serve(
  { hostname: HOST, port: S3_PORT, onListen: () => {} },
  faultyS3(server.endpoint, DEFAULT_S3_FAULTS),
);
console.log(
  `${
    new Date().toISOString()
  } s3 stand-in on http://${HOST}:${S3_PORT} (s3rver on ${server.endpoint}, ` +
    `faults: error_rate=${DEFAULT_S3_FAULTS.errorRate}, cut_rate=${DEFAULT_S3_FAULTS.cutRate}), bucket ${EXPORT_BUCKET}`,
);
