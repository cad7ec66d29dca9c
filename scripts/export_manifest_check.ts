/**
 * An export's manifests checked against what DynamoDB says of the export (DescribeExport)
 * before its job starts (scripts/export_backfill.ts): the summary is the table's, of the
 * export asked for at the time DynamoDB gives, in the export's own folder, of a full export
 * in DynamoDB JSON, counting the items DynamoDB exported; a manifest copied from another
 * export would load that export's rows stamped with this one's time, and one cut short
 * would be read as a smaller table, whose end's sweep deletes the rest.
 *
 * @module
 */

import type { ExportDescription } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { type ExportSummary, parseExportSummary } from "../functions-shared/export_manifest.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { manifestText } from "./export_s3.ts";

/**
 * What in an export's manifest summary disagrees with what DynamoDB says of the export
 * (DescribeExport), which the bucket's files cannot change: the summary in the export's own
 * folder (`.../AWSDynamoDB/<export id>/`), its files manifest beside it (a summary pointing
 * at another export's would load that export's files under this one's time), a full export
 * in DynamoDB JSON, and as many items as DynamoDB exported (a summary and files manifest cut
 * short together would be read as a smaller table, and the end's sweep delete the rest).
 */
export function describedExportProblem(
  arn: string,
  description: ExportDescription,
  summary: { manifestFilesKey: string; itemCount: number },
): string | undefined {
  const id = arn.slice(arn.lastIndexOf("/") + 1);
  const summaryKey = description.ExportManifest ?? "";
  const folder = summaryKey.slice(0, summaryKey.lastIndexOf("/") + 1);
  if (!folder.endsWith(`AWSDynamoDB/${id}/`)) {
    return `DynamoDB's manifest ${summaryKey} is not in the export's folder AWSDynamoDB/${id}/`;
  }
  if (summary.manifestFilesKey !== `${folder}manifest-files.json`) {
    return `its files manifest ${summary.manifestFilesKey} is not ${folder}manifest-files.json`;
  }
  if (description.ExportType !== undefined && description.ExportType !== "FULL_EXPORT") {
    return `the export is a ${description.ExportType}, not a FULL_EXPORT`;
  }
  if (description.ExportFormat !== undefined && description.ExportFormat !== "DYNAMODB_JSON") {
    return `the export is in ${description.ExportFormat}, not DYNAMODB_JSON`;
  }
  if (description.ItemCount === undefined || description.ItemCount !== summary.itemCount) {
    return `it counts ${summary.itemCount} items, DynamoDB ${
      description.ItemCount ?? "none"
    } (ItemCount)`;
  }
  return undefined;
}

/**
 * Reads export `arn`'s manifest summary from its bucket and checks it against
 * `description`; its bucket and the summary, or an error naming the table and why.
 */
export async function checkedSummary(
  deps: { s3: S3Client; log: (line: string) => void },
  spec: TableSpec,
  arn: string,
  description: ExportDescription,
): Promise<{ bucket: string; summary: ExportSummary }> {
  const bucket = description.S3Bucket!;
  const summaryKey = description.ExportManifest!;
  const summary = parseExportSummary(
    await manifestText(deps.s3, bucket, summaryKey, deps.log),
    `s3://${bucket}/${summaryKey}`,
  );
  if (summary.tableName !== spec.sourceTable) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: export ${arn} is of ${summary.tableName}`,
    );
  }
  // The summary is the one of the export asked for, at the time DynamoDB gives it: one
  // copied from another export would load that export's rows stamped with this one's time.
  // (The times within a second: one is ISO text in S3, the other epoch seconds from the
  // API; the ARN is what tells two exports apart.)
  const describedAt = description.ExportTime?.getTime();
  if (
    summary.exportArn !== arn ||
    (describedAt !== undefined && Math.abs(describedAt - summary.exportTime.getTime()) >= 1000)
  ) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: s3://${bucket}/${summaryKey} is of export ` +
        `${summary.exportArn} as of ${summary.exportTime.toISOString()}, but DynamoDB gives ` +
        `export ${arn} as of ${description.ExportTime?.toISOString() ?? "(no time)"}: the ` +
        "manifest is not this export's",
    );
  }
  const described = describedExportProblem(arn, description, summary);
  if (described) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: s3://${bucket}/${summaryKey}: ${described}: ` +
        "the manifests are not this export's as DynamoDB gives it",
    );
  }
  return { bucket, summary };
}
