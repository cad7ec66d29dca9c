/**
 * The objects a DynamoDB export writes to S3, in AWS's layout (AWS Developer Guide,
 * "DynamoDB table export output format":
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
 *
 *     <prefix>/AWSDynamoDB/<ExportId>/_started                 (empty)
 *     <prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz      one {"Item": {...}} per line
 *     <prefix>/AWSDynamoDB/<ExportId>/manifest-files.json      one line per data file
 *     <prefix>/AWSDynamoDB/<ExportId>/manifest-files.checksum
 *     <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json
 *     <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.checksum
 *
 * The keys inside the manifests are keys in the bucket, the prefix included, as real
 * exports write them (AWS's own example starts them at `AWSDynamoDB/`;
 * functions-shared/export_manifest.ts reads either form).
 *
 * @module
 */

import { createHash } from "node:crypto";

type Body = Record<string, unknown>;

/** One object to put in the bucket. */
export interface ExportObject {
  key: string;
  bytes: Uint8Array;
}

/** An export's objects, and what its description reports. */
export interface ExportFiles {
  objects: ExportObject[];
  /** The key of manifest-summary.json (the description's ExportManifest). */
  summaryKey: string;
  dataFiles: number;
  billedSizeBytes: number;
}

/** A gzipped data file of items, with its MD5 as the files manifest gives it. */
export async function gzipItems(items: Body[]): Promise<{ bytes: Uint8Array; md5: string }> {
  const text = items.map((item) => JSON.stringify({ Item: item })).join("\n") +
    (items.length > 0 ? "\n" : "");
  const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(gz).arrayBuffer());
  return { bytes, md5: createHash("md5").update(bytes).digest("base64") };
}

const iso = (seconds: unknown) => new Date(Number(seconds) * 1000).toISOString();
const encode = (text: string) => new TextEncoder().encode(text);
const md5Hex = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/**
 * The objects of an export of `items` described by `description` (an ExportDescription:
 * ExportArn, TableArn, TableId, ExportTime, StartTime, S3Bucket, S3Prefix,
 * S3SseAlgorithm), `itemsPerFile` items a data file, and one empty data file among them
 * (an empty partition's).
 */
export async function exportFiles(input: {
  description: Body;
  endTime: number;
  items: Body[];
  itemsPerFile: number;
}): Promise<ExportFiles> {
  const d = input.description;
  const exportId = String(d.ExportArn).split("/export/")[1];
  const relative = `AWSDynamoDB/${exportId}`;
  const prefix = typeof d.S3Prefix === "string" && d.S3Prefix !== ""
    ? `${d.S3Prefix.replace(/\/+$/, "")}/`
    : "";
  const objects: ExportObject[] = [{
    key: `${prefix}${relative}/_started`,
    bytes: new Uint8Array(),
  }];
  const lines: string[] = [];
  let billedSizeBytes = 0;
  // The files' items, and one empty file more: AWS writes a file per partition, and "for
  // partitions that are empty, your export request will create an empty file", so a
  // reader meets empty files among full ones (an empty table's export has only that one).
  const count = Math.ceil(input.items.length / input.itemsPerFile);
  const parts = Array.from(
    { length: count },
    (_, i) => input.items.slice(i * input.itemsPerFile, (i + 1) * input.itemsPerFile),
  );
  parts.splice(Math.min(1, parts.length), 0, []);
  for (const items of parts) {
    // "For partitions that are empty, your export request will create an empty file": no
    // bytes, not a gzip of nothing (the Developer Guide's page above).
    const { bytes, md5 } = items.length > 0 ? await gzipItems(items) : {
      bytes: new Uint8Array(),
      md5: createHash("md5").update(new Uint8Array()).digest("base64"),
    };
    const name = `${relative}/data/${crypto.randomUUID().replaceAll("-", "").slice(0, 26)}.json.gz`;
    objects.push({ key: `${prefix}${name}`, bytes });
    billedSizeBytes += bytes.length;
    lines.push(JSON.stringify({
      itemCount: items.length,
      md5Checksum: md5,
      // The object's ETag as S3 gives a single-part upload's (the stand-in's own PutObject).
      etag: md5Hex(bytes),
      // The key in the bucket, prefix included, as real exports write it: opensearch-
      // project/data-prepper's ManifestFileReader quotes one ("dataFileS3Key":
      // "test-table-export/AWSDynamoDB/01692350182719-6de2c037/data/....json.gz"). AWS's
      // Developer Guide's example starts at AWSDynamoDB/; the reader takes both
      // (functions-shared/export_manifest.ts, keyInBucket), its unit test that form.
      dataFileS3Key: `${prefix}${name}`,
    }));
  }
  const filesManifest = encode(lines.join("\n") + "\n");
  const summary = encode(JSON.stringify({
    version: "2020-06-30",
    exportArn: d.ExportArn,
    startTime: iso(d.StartTime),
    endTime: new Date(input.endTime).toISOString(),
    tableArn: d.TableArn,
    tableId: d.TableId,
    exportTime: iso(d.ExportTime),
    s3Bucket: d.S3Bucket,
    s3Prefix: d.S3Prefix ?? null,
    s3SseAlgorithm: d.S3SseAlgorithm ?? "AES256",
    s3SseKmsKeyId: null,
    manifestFilesS3Key: `${prefix}${relative}/manifest-files.json`,
    billedSizeBytes,
    itemCount: input.items.length,
    outputFormat: "DYNAMODB_JSON",
    exportType: "FULL_EXPORT",
  }));
  objects.push(
    { key: `${prefix}${relative}/manifest-files.json`, bytes: filesManifest },
    { key: `${prefix}${relative}/manifest-files.checksum`, bytes: encode(md5Hex(filesManifest)) },
    { key: `${prefix}${relative}/manifest-summary.json`, bytes: summary },
    { key: `${prefix}${relative}/manifest-summary.checksum`, bytes: encode(md5Hex(summary)) },
  );
  return {
    objects,
    summaryKey: `${prefix}${relative}/manifest-summary.json`,
    dataFiles: count,
    billedSizeBytes,
  };
}
