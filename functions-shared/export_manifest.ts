/**
 * A DynamoDB point-in-time export's two manifests, as DynamoDB writes them to S3, read
 * and checked before any of the export's data is loaded (docs/sync-semantics.md,
 * "Backfills from an export").
 *
 * An export of a table lands under `<prefix>/AWSDynamoDB/<ExportId>/`:
 * `manifest-summary.json` (one JSON object: the export's ARN, its table, its export time,
 * where it went, how many items, in what format) and `manifest-files.json` (one JSON
 * object per line, one line per data file: its key, its item count, its MD5 and ETag),
 * beside `data/*.json.gz` (AWS Developer Guide, "DynamoDB table export output format":
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html).
 *
 * Only full exports in DynamoDB JSON are loaded: an incremental export's lines are
 * changes (old and new images), not items, and Amazon Ion is another syntax. Either is
 * refused with an error that says so, never read as something else.
 *
 * @module
 */

/** What an export's summary manifest says, checked. */
export interface ExportSummary {
  /** `arn:aws:dynamodb:<region>:<account>:table/<name>/export/<id>`. */
  exportArn: string;
  /** The exported table's ARN. */
  tableArn: string;
  /** The table's name, from its ARN. */
  tableName: string;
  /** The export's time, as DynamoDB gives it (its `ExportTime`). */
  exportTime: Date;
  /**
   * When the export's items are taken as read: its time less {@link EXPORT_WINDOW_MS}.
   * Every row loaded is stamped with it, and the stream must cover the table from it.
   */
  readAt: Date;
  s3Bucket: string;
  /** The export's prefix in the bucket, "" when it has none. */
  s3Prefix: string;
  /** Where manifest-files.json is, as a key in the bucket. */
  manifestFilesKey: string;
  /** How many items the export holds, by DynamoDB's count. */
  itemCount: number;
}

/**
 * How far before its time an export's items may lie: an export is not a snapshot of one
 * instant. AWS Developer Guide, "DynamoDB data export to Amazon S3: how it works"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.HowItWorks.html):
 * "The request time and the time of the last update included in the data lake export
 * request may vary within a one-minute time window. For example, if you submit the
 * request at 2:25 PM, the output is guaranteed to contain all data committed to the table
 * up to 2:24, and data committed after 2:26 will not be included. The output may or may
 * not contain data modifications made between 2:24 and 2:26. Exported data is also not
 * transactionally consistent."
 *
 * The example's times are whole minutes: a request at 2:25:59 is guaranteed only what was
 * committed by 2:24:00. So an item may be as it was up to two minutes before the export
 * time, and its rows are stamped as read two minutes before it ({@link
 * ExportSummary.readAt}): a stream change made in that span is newer than the stamp and
 * wins over an export's older image of the item (an update, a delete, a creation the
 * export missed), and one after the export time that the export already holds brings the
 * same item again. Stamped at the export time, an older image would win over such a
 * change, which no later record mends.
 */
export const EXPORT_WINDOW_MS = 120_000;

/** One data file of an export, from its line in manifest-files.json. */
export interface ExportDataFile {
  /** The file's key in the export's bucket. */
  key: string;
  /** How many items (lines) it holds. */
  itemCount: number;
  /** Base64 MD5 of the object as stored (gzipped). */
  md5Checksum: string;
  etag: string;
}

/** A manifest that cannot be loaded, with where and why. */
export class ExportManifestError extends Error {
  constructor(where: string, problem: string) {
    super(`export manifest ${where}: ${problem}`);
    this.name = "ExportManifestError";
  }
}

const EXPORT_ARN =
  /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/([A-Za-z0-9_.-]{3,255})\/export\/[A-Za-z0-9-]+$/;
const TABLE_ARN = /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/([A-Za-z0-9_.-]{3,255})$/;

function objectOf(text: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ExportManifestError(where, `not JSON (${(error as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ExportManifestError(where, "not a JSON object");
  }
  return value as Record<string, unknown>;
}

function textField(o: Record<string, unknown>, field: string, where: string): string {
  const value = o[field];
  if (typeof value !== "string" || value === "") {
    throw new ExportManifestError(where, `${field} is missing or not a string`);
  }
  return value;
}

function countField(o: Record<string, unknown>, field: string, where: string): number {
  const value = o[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ExportManifestError(where, `${field} is missing or not a whole number`);
  }
  return value;
}

/**
 * The key of an object the manifests name, in the export's bucket. AWS's own example
 * gives keys starting at `AWSDynamoDB/` beside a non-empty s3Prefix, so a key that does
 * not already start with the prefix is taken as relative to it.
 */
export function keyInBucket(prefix: string, key: string): string {
  if (prefix === "" || key.startsWith(`${prefix}/`)) return key;
  return `${prefix}/${key}`;
}

/** Reads and checks manifest-summary.json's text; `where` names it in errors (bucket/key). */
export function parseExportSummary(text: string, where: string): ExportSummary {
  const o = objectOf(text, where);
  if (o.version !== "2020-06-30") {
    throw new ExportManifestError(where, `version ${JSON.stringify(o.version)} is not 2020-06-30`);
  }
  if (o.exportType !== undefined && o.exportType !== "FULL_EXPORT") {
    throw new ExportManifestError(
      where,
      `exportType is ${JSON.stringify(o.exportType)}: only a full export holds every item`,
    );
  }
  if (o.outputFormat !== "DYNAMODB_JSON") {
    throw new ExportManifestError(
      where,
      `outputFormat is ${JSON.stringify(o.outputFormat)}: export in DYNAMODB_JSON`,
    );
  }
  const exportArn = textField(o, "exportArn", where);
  const tableArn = textField(o, "tableArn", where);
  const table = TABLE_ARN.exec(tableArn);
  if (!table) throw new ExportManifestError(where, `tableArn ${tableArn} is not a table's ARN`);
  const exported = EXPORT_ARN.exec(exportArn);
  if (!exported || !exportArn.startsWith(`${tableArn}/export/`)) {
    throw new ExportManifestError(where, `exportArn ${exportArn} is not an export of ${tableArn}`);
  }
  const timeText = textField(o, "exportTime", where);
  const exportTime = new Date(timeText);
  if (Number.isNaN(exportTime.getTime())) {
    throw new ExportManifestError(where, `exportTime ${JSON.stringify(timeText)} is not a time`);
  }
  if (o.s3Prefix !== null && o.s3Prefix !== undefined && typeof o.s3Prefix !== "string") {
    throw new ExportManifestError(where, "s3Prefix is not a string");
  }
  const s3Prefix = ((o.s3Prefix as string | null | undefined) ?? "").replace(/\/+$/, "");
  return {
    exportArn,
    tableArn,
    tableName: table[1],
    exportTime,
    readAt: new Date(exportTime.getTime() - EXPORT_WINDOW_MS),
    s3Bucket: textField(o, "s3Bucket", where),
    s3Prefix,
    manifestFilesKey: keyInBucket(s3Prefix, textField(o, "manifestFilesS3Key", where)),
    itemCount: countField(o, "itemCount", where),
  };
}

/**
 * Reads and checks manifest-files.json's text (one JSON object per line) against its
 * summary: every data file's key, in the export's `data/` beside it, each listed once,
 * and the sum of their item counts
 * equal to the summary's, so that a manifest cut short is refused rather than loaded as
 * a smaller table.
 */
export function parseExportFiles(
  text: string,
  summary: ExportSummary,
  where: string,
): ExportDataFile[] {
  const files: ExportDataFile[] = [];
  const listed = new Set<string>();
  // `<prefix>/AWSDynamoDB/<ExportId>/data/`, beside manifest-files.json.
  const dataDir = `${
    summary.manifestFilesKey.slice(0, summary.manifestFilesKey.lastIndexOf("/") + 1)
  }data/`;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const at = `${where} line ${i + 1}`;
    const o = objectOf(line, at);
    const key = keyInBucket(summary.s3Prefix, textField(o, "dataFileS3Key", at));
    if (!key.endsWith(".json.gz")) {
      throw new ExportManifestError(at, `data file ${key} is not a .json.gz file`);
    }
    // The export's own files only: a key elsewhere in the bucket (another export's file,
    // an object put there) would be loaded stamped with this export's time.
    if (!key.startsWith(dataDir)) {
      throw new ExportManifestError(at, `data file ${key} is not in this export's ${dataDir}`);
    }
    // A file listed twice would be loaded twice, and one left out would pass the count:
    // the job's sweep would then remove every row of the file it never loaded.
    if (listed.has(key)) throw new ExportManifestError(at, `data file ${key} is listed twice`);
    listed.add(key);
    files.push({
      key,
      itemCount: countField(o, "itemCount", at),
      md5Checksum: textField(o, "md5Checksum", at),
      etag: textField(o, "etag", at),
    });
  }
  const total = files.reduce((sum, file) => sum + file.itemCount, 0);
  if (total !== summary.itemCount) {
    throw new ExportManifestError(
      where,
      `its files hold ${total} items, but the summary says ${summary.itemCount}`,
    );
  }
  return files;
}
