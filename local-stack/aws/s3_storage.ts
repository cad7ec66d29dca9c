/**
 * Where the stand-in's exports are written (local-stack/aws/exports.ts): a bucket of the
 * S3 stand-in, through the same S3 client an application would use.
 *
 * @module
 */

import { HeadBucketCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { ExportStorage } from "./export_completion.ts";

/** An {@link ExportStorage} over `client`. */
export function s3Storage(client: S3Client): ExportStorage {
  return {
    async bucketExists(bucket) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return true;
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
          ?.httpStatusCode;
        if (status === 404) return false;
        throw error;
      }
    },
    async put(bucket, key, bytes) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    },
  };
}
