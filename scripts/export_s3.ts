/**
 * The export bucket in S3, as the export backfill reads it (scripts/export_backfill.ts):
 * its client, a manifest's text checked against its `.checksum`, and a data file's bytes,
 * refused when its ETag is not the manifest's.
 *
 * @module
 */

import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { awsClientConfig, type EnvReader } from "../functions-shared/dynamo_client.ts";
import { ExportDataError, ExportReadError } from "../functions-shared/export_items.ts";
import { type ObjectPart, resumedBody, type ResumeDeps } from "./s3_resumed_body.ts";

/**
 * The S3 client of the export bucket: the local stack's S3 stand-in when S3_ENDPOINT is
 * set (reached path-style, with S3_ACCESS_KEY_ID), else AWS's, with the same credentials
 * as DynamoDB's. Requests are signed for EXPORT_BUCKET_REGION (us-east-1 when unset, the
 * region of the bucket infrastructure/terraform makes). A bucket elsewhere may answer
 * `301 PermanentRedirect`, which the client follows (`followRegionRedirects`), or `400
 * AuthorizationHeaderMalformed`, which the SDK does not follow: the first object read
 * then fails naming the bucket's region and the setting to give it
 * (local-stack/aws/s3_auth.ts answers so).
 */
export function exportS3Client(env: EnvReader): S3Client {
  // The local stack's S3 stand-in: its own key pair (S3_ACCESS_KEY_ID), or the exporter's,
  // held to its Terraform policy (local-stack/aws/s3_iam.ts).
  const s3Key = env("S3_ACCESS_KEY_ID");
  const credentials = s3Key
    ? { accessKeyId: s3Key, secretAccessKey: env("S3_SECRET_ACCESS_KEY") ?? "" }
    : awsClientConfig(env, "us-east-1").credentials;
  const endpoint = env("S3_ENDPOINT");
  return new S3Client({
    region: env("EXPORT_BUCKET_REGION") ?? "us-east-1",
    followRegionRedirects: true,
    // A connection S3 does not open is given up (the SDK's default waits for ever), and so
    // is an answer whose headers do not come within a minute (requestTimeout, which only
    // logs unless told to throw; its timer stops once the headers are in); one that goes
    // quiet mid-file is given up by the read (export_bytes.ts, READ_QUIET_MS).
    requestHandler: {
      connectionTimeout: 10_000,
      requestTimeout: 60_000,
      throwOnRequestTimeout: true,
    },
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(credentials ? { credentials } : {}),
  });
}

/** An object's text; an error names the object (S3's own names none). */
async function objectText(s3: S3Client, bucket: string, key: string): Promise<string> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const text = await object.Body!.transformToString();
    // A body that ended before its length (a connection closed cleanly mid-object) is a
    // broken read, tried again, not a manifest to refuse for good.
    const bytes = new TextEncoder().encode(text).byteLength;
    if (object.ContentLength !== undefined && bytes < object.ContentLength) {
      throw new ExportReadError(
        `s3://${bucket}/${key}`,
        `the object's bytes ended after ${bytes} of its ${object.ContentLength} bytes`,
      );
    }
    return text;
  } catch (error) {
    if (error instanceof ExportReadError) throw error;
    // Named by the object, and still S3's error (its name, HTTP status and code tell a
    // failure that may pass from a refusal: export_failures.ts).
    const { name, $metadata, code, $response } = error as {
      name?: string;
      $metadata?: unknown;
      code?: string;
      $response?: { headers?: Record<string, string> };
    };
    // A request signed for another region than the bucket's (S3 names the bucket's).
    const region = $response?.headers?.["x-amz-bucket-region"];
    const wrongRegion = name === "AuthorizationHeaderMalformed" || name === "PermanentRedirect";
    const hint = region && wrongRegion
      ? `; the bucket is in ${region}: set EXPORT_BUCKET_REGION=${region}`
      : "";
    throw Object.assign(new Error(`s3://${bucket}/${key}: ${(error as Error).message}${hint}`), {
      name: name ?? "Error",
      $metadata,
      code,
      cause: error,
    });
  }
}

/**
 * A manifest's text, checked against the MD5 in its `.checksum` object beside it, which
 * the export writes for each manifest
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html);
 * its digest is taken in hex or in base64, whichever the file holds.
 */
export async function manifestText(
  s3: S3Client,
  bucket: string,
  key: string,
  warn: (line: string) => void,
): Promise<string> {
  const text = await objectText(s3, bucket, key);
  const expected = (await objectText(s3, bucket, key.replace(/\.json$/, ".checksum"))).trim();
  const digest = createHash("md5").update(text).digest();
  const actual = digest.toString("hex");
  // AWS's guide names the file but not its form: a digest in neither form is not taken
  // for a mismatch (every export would be refused), only named.
  if (!/^[0-9a-fA-F]{32}$|^[A-Za-z0-9+/]{22}==$/.test(expected)) {
    warn(
      `s3://${bucket}/${key}: its .checksum (${
        expected.slice(0, 64)
      }) is no MD5 in hex or base64; not checked`,
    );
    return text;
  }
  if (actual !== expected.toLowerCase() && digest.toString("base64") !== expected) {
    throw new Error(
      `s3://${bucket}/${key}: its MD5 is ${actual}, but its .checksum says ${expected}: ` +
        "it is not the manifest the export wrote",
    );
  }
  return text;
}

/** An ETag without its quotes (S3 quotes it in headers, a manifest does not). */
const bareEtag = (etag: string) => etag.replace(/"/g, "");

/**
 * A data file's gzipped bytes, as a stream, read on through breaks from the byte each broke
 * at (s3_resumed_body.ts). With `etag` (the manifest's), an object whose ETag differs is
 * refused before a byte of it is read: it was written over the export's file since.
 */
export function exportFileOpener(
  s3: S3Client,
  bucket: string,
  deps: Pick<ResumeDeps, "sleep" | "log" | "quietMs"> = {},
) {
  return async (key: string, etag?: string) => {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (etag && object.ETag && bareEtag(object.ETag) !== bareEtag(etag)) {
      await object.Body?.transformToWebStream().cancel();
      throw new ExportDataError(
        key,
        `its ETag is ${bareEtag(object.ETag)}, but the files manifest says ${
          bareEtag(etag)
        }: it is not the file the export wrote (written over since?)`,
      );
    }
    const body = object.Body!.transformToWebStream() as ReadableStream<Uint8Array>;
    if (typeof object.ContentLength !== "number") return body;
    const readFrom = async (offset: number): Promise<ObjectPart> => {
      const part = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${offset}-` }),
      );
      return {
        body: part.Body!.transformToWebStream() as ReadableStream<Uint8Array>,
        etag: part.ETag,
        // "Content-Range: bytes 21010-47021/47022" (RFC 9110, 14.4).
        start: Number(/^bytes (\d+)-/.exec(part.ContentRange ?? "")?.[1] ?? NaN),
      };
    };
    return resumedBody(
      `s3://${bucket}/${key}`,
      { body, etag: object.ETag, start: 0 },
      object.ContentLength,
      { ...deps, readFrom },
    );
  };
}
