/**
 * A client of the stack's S3 (s3_server.ts), apart from the server: the DynamoDB proxy and
 * the benches need only the client, and loading s3rver with it cost each proxy start about
 * 0.4 s of CPU.
 *
 * @module
 */

import { S3Client } from "@aws-sdk/client-s3";
import { EXPORT_BUCKET_REGION, S3_CREDENTIALS } from "../config.ts";

/** A client of the S3 stand-in at `endpoint`, signing for its buckets' region. */
export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    region: EXPORT_BUCKET_REGION,
    endpoint,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
  });
}
