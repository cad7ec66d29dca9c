/**
 * How the exports' stand-in (exports.ts) completes an export: its items read from
 * DynamoDB Local when it completes (a consistent Scan, no read capacity counted, as an
 * export uses none), each written within AWS's window as at its own moment
 * (export_moments.ts), and its files written to the S3 stand-in in AWS's layout
 * (export_layout.ts); or the export FAILED as AWS reports a bucket it cannot write to.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { type ExportFiles, exportFiles } from "./export_layout.ts";
import { exportItems, type ExportVersions } from "./export_moments.ts";
import type { Random } from "./history.ts";
import { regionArn } from "./region_arns.ts";
import { credentialOf } from "./scope.ts";

type Body = Record<string, unknown>;

/** Where exports are written: the S3 stand-in. */
export interface ExportStorage {
  bucketExists(bucket: string): Promise<boolean>;
  put(bucket: string, key: string, bytes: Uint8Array): Promise<void>;
  /**
   * IAM's refusal of `s3:PutObject` of `key` in `bucket` to the access key `keyId` (the
   * export's requester's), or null when its policy allows it (s3_iam.ts). None: allowed.
   */
  putDenied?(keyId: string, bucket: string, key: string): string | null;
}

/** What completing an export needs of the stand-in's options (exports.ts, ExportOptions). */
export interface ExportWriting {
  /** Calls DynamoDB Local (no faults) with the request's headers; answers its JSON or throws. */
  upstream: (headers: Headers, operation: string, body: Body) => Promise<Body>;
  storage: ExportStorage;
  /** Items per data file (AWS writes at least one file per partition). */
  itemsPerFile?: number;
  /**
   * The recent writes of every table, by `scope/table` (the proxy's): each item written
   * within the export window is as at its own moment (export_moments.ts). None: the export
   * is the table as a consistent Scan reads it when the export completes.
   */
  versions?: ExportVersions;
  /** Draws the items' moments: Math.random, or a seeded one in tests. */
  random?: Random;
  log?: (line: string) => void;
}

/** An export the stand-in was asked for, and what became of it. */
export interface ExportState {
  description: Body;
  /** The request's parameters but its ClientToken (export_requests.ts, `askedOf`). */
  asked: Record<string, string>;
  /** When DescribeExport may first answer COMPLETED or FAILED. */
  readyAt: number;
  /**
   * What its items are read from when it completes, and who asked for it (the access key
   * it writes to S3 as); `exportTime` in ms.
   */
  source: {
    headers: Headers;
    scope: string;
    tableName: string;
    keyNames: string[];
    keyId: string;
  };
  exportTime: number;
  /** Its items read and files written, once begun (exports.ts, TableExports' `#complete`). */
  completing?: Promise<void>;
  outcome?: Body;
}

/** The export's items, read now: each written within the window as at its own moment. */
async function readItems(
  state: ExportState,
  writing: ExportWriting,
  now: () => number,
): Promise<Item[]> {
  const { headers, scope, tableName, keyNames } = state.source;
  const readAt = now();
  const scanned: Item[] = [];
  let start: Body | undefined;
  do {
    const page = await writing.upstream(headers, "Scan", {
      TableName: tableName,
      ConsistentRead: true,
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    scanned.push(...(page.Items as Item[]));
    start = page.LastEvaluatedKey as Body | undefined;
  } while (start);
  return exportItems({
    scanned,
    table: `${scope}/${tableName}`,
    keyNames,
    exportTime: state.exportTime,
    readAt,
    versions: writing.versions,
    random: writing.random ?? Math.random,
  });
}

/** Writes the export's files, or fails it as AWS would for a bucket it cannot write. */
export async function writeExport(
  state: ExportState,
  writing: ExportWriting,
  now: () => number,
): Promise<void> {
  const d = state.description;
  const bucket = String(d.S3Bucket);
  if (!await writing.storage.bucketExists(bucket)) {
    state.outcome = {
      ExportStatus: "FAILED",
      EndTime: now() / 1000,
      FailureCode: "S3NoSuchBucket",
      FailureMessage: `The specified bucket does not exist: ${bucket}`,
    };
    return;
  }
  // DynamoDB writes the files with the requester's own rights: one without s3:PutObject
  // on the bucket has the export accepted, then FAILED with S3's AccessDenied (as a
  // cross-account export without the bucket's grant is reported: "Access Denied
  // (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; ...)",
  // https://github.com/aws-solutions-library-samples/guidance-for-incremental-data-exports-from-amazon-dynamodb-to-amazon-s3/issues/6).
  // The failure code is not documented; the stand-in says S3AccessDenied.
  const prefix = d.S3Prefix ? `${d.S3Prefix}/` : "";
  const exportId = String(d.ExportArn).split("/").at(-1);
  const denied = writing.storage.putDenied?.(
    state.source.keyId,
    bucket,
    `${prefix}AWSDynamoDB/${exportId}/manifest-summary.json`,
  );
  if (denied) {
    writing.log?.(`export ${d.ExportArn}: ${denied}`);
    state.outcome = {
      ExportStatus: "FAILED",
      EndTime: now() / 1000,
      FailureCode: "S3AccessDenied",
      FailureMessage: "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: " +
        `AccessDenied; Request ID: ${crypto.randomUUID()})`,
    };
    return;
  }
  const items = await readItems(state, writing, now);
  // The manifest names the export and its table as DescribeExport answers them: in the
  // region it was asked in, not DynamoDB Local's `ddblocal` (region_arns.ts).
  const region = credentialOf(state.source.headers)?.region;
  const files: ExportFiles = await exportFiles({
    description: region
      ? {
        ...d,
        ExportArn: regionArn(String(d.ExportArn), region),
        TableArn: regionArn(String(d.TableArn), region),
      }
      : d,
    endTime: now(),
    items,
    itemsPerFile: writing.itemsPerFile ?? 1000,
  });
  for (const file of files.objects) await writing.storage.put(bucket, file.key, file.bytes);
  writing.log?.(`export ${d.ExportArn}: ${items.length} items in ${files.dataFiles} files`);
  state.outcome = {
    ExportStatus: "COMPLETED",
    EndTime: now() / 1000,
    ExportManifest: files.summaryKey,
    ItemCount: items.length,
    BilledSizeBytes: files.billedSizeBytes,
  };
}
