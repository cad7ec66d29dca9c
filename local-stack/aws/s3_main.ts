/**
 * The S3 stand-in's process (started by `stack:up` as one of its Deno parts): s3rver
 * (local-stack/aws/s3_server.ts) over `.local/s3/`, with the export bucket
 * (EXPORT_BUCKET, in EXPORT_BUCKET_REGION) made, so that the stack's DynamoDB exports have
 * somewhere to go; and in front of it, at S3_PORT, what S3 checks and s3rver does not (each
 * request's signature: local-stack/aws/s3_auth.ts, and the operator's exporter held to its
 * Terraform policy: s3_iam.ts), then the faults S3 has and s3rver has not
 * (local-stack/aws/s3_faults.ts).
 *
 * @module
 */

import {
  EXPORT_BUCKET,
  EXPORT_BUCKET_REGION,
  HOST,
  S3_CREDENTIALS,
  S3_DIR,
  S3_PORT,
} from "../config.ts";
import { readStackEnv } from "../stack_env.ts";
import { authenticatedS3 } from "./s3_auth.ts";
import { stackS3Policies } from "./s3_iam.ts";
import { describeS3Faults, faultyS3, parseS3Faults, type S3Faults } from "./s3_faults.ts";
import { startS3Server } from "./s3_server.ts";

const env = readStackEnv();
// S3_FAULTS, when set (local-stack/aws/s3_faults.ts): a bad value stops the stand-in.
let faults: S3Faults;
try {
  faults = parseS3Faults(env.S3_FAULTS);
} catch (error) {
  console.error((error as Error).message);
  Deno.exit(2);
}
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
Deno.mkdirSync(S3_DIR, { recursive: true });
const server = await startS3Server({
  host: HOST,
  port: 0,
  directory: S3_DIR,
  buckets: [EXPORT_BUCKET],
});
Deno.serve(
  { hostname: HOST, port: S3_PORT, onListen: () => {} },
  authenticatedS3(faultyS3(server.endpoint, faults, Math.random, log), {
    secrets: {
      [S3_CREDENTIALS.accessKeyId]: S3_CREDENTIALS.secretAccessKey,
      [env.AWS_EXPORTER_ACCESS_KEY_ID]: env.AWS_EXPORTER_SECRET_ACCESS_KEY,
    },
    policies: stackS3Policies(env.AWS_EXPORTER_ACCESS_KEY_ID, EXPORT_BUCKET),
    ownKeyId: S3_CREDENTIALS.accessKeyId,
    region: EXPORT_BUCKET_REGION,
  }),
);
console.log(
  `${
    new Date().toISOString()
  } s3 stand-in on http://${HOST}:${S3_PORT} (s3rver on ${server.endpoint}, ` +
    `signatures checked, faults: ${
      describeS3Faults(faults)
    }), bucket ${EXPORT_BUCKET} in ${EXPORT_BUCKET_REGION}`,
);
