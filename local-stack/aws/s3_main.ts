/**
 * The S3 stand-in's process (started by `stack:up` as one of its Deno parts): s3rver
 * (local-stack/aws/s3_server.ts) at S3_PORT over `.local/s3/`, with the export bucket
 * (EXPORT_BUCKET) made, so that the stack's DynamoDB exports have somewhere to go.
 *
 * @module
 */

import { EXPORT_BUCKET, HOST, S3_DIR, S3_PORT } from "../config.ts";
import { startS3Server } from "./s3_server.ts";

Deno.mkdirSync(S3_DIR, { recursive: true });
const server = await startS3Server({
  host: HOST,
  port: S3_PORT,
  directory: S3_DIR,
  buckets: [EXPORT_BUCKET],
});
console.log(
  `${new Date().toISOString()} s3 stand-in on ${server.endpoint}, bucket ${EXPORT_BUCKET}`,
);
