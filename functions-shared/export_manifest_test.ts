import assert from "node:assert/strict";
import {
  ExportManifestError,
  keyInBucket,
  parseExportFiles,
  parseExportSummary,
} from "./export_manifest.ts";

const TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/firespring_actions";
const EXPORT = `${TABLE}/export/01700000000000-a1b2c3d4`;

function summaryText(over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: "2020-06-30",
    exportArn: EXPORT,
    startTime: "2026-11-28T10:00:00.000Z",
    endTime: "2026-11-28T10:05:00.000Z",
    tableArn: TABLE,
    tableId: "12345a12-abcd-123a-ab12-1234abc12345",
    exportTime: "2026-11-28T10:00:00.000Z",
    s3Bucket: "exports",
    s3Prefix: "2026-11",
    s3SseAlgorithm: "AES256",
    s3SseKmsKeyId: null,
    manifestFilesS3Key: "AWSDynamoDB/01700000000000-a1b2c3d4/manifest-files.json",
    billedSizeBytes: 0,
    itemCount: 5,
    outputFormat: "DYNAMODB_JSON",
    ...over,
  });
}

function fileLine(key: string, itemCount: number): string {
  return JSON.stringify({
    itemCount,
    md5Checksum: "sQMSpEILNgoQmarvDFonGQ==",
    etag: "af83-1",
    dataFileS3Key: key,
  });
}

Deno.test("a full export's summary is read with its table, time and files' key under the prefix", () => {
  const summary = parseExportSummary(summaryText(), "exports/summary");
  assert.deepEqual(summary.tableName, "firespring_actions");
  assert.deepEqual(summary.exportTime.toISOString(), "2026-11-28T10:00:00.000Z");
  // Its items may be as they were up to two minutes before: its rows are stamped then.
  assert.deepEqual(summary.readAt.toISOString(), "2026-11-28T09:58:00.000Z");
  assert.deepEqual(summary.s3Prefix, "2026-11");
  assert.deepEqual(
    summary.manifestFilesKey,
    "2026-11/AWSDynamoDB/01700000000000-a1b2c3d4/manifest-files.json",
  );
  assert.deepEqual(summary.itemCount, 5);
});

Deno.test("an export that is not a full DynamoDB JSON export of one table is refused, saying why", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ outputFormat: "ION" }, 'outputFormat is "ION"'],
    [{ exportType: "INCREMENTAL_EXPORT" }, "only a full export holds every item"],
    [{ version: "2021-01-01" }, "is not 2020-06-30"],
    [{ exportTime: "yesterday" }, 'exportTime "yesterday" is not a time'],
    [{ exportArn: `${TABLE}x/export/1` }, "is not an export of"],
    [{ itemCount: -1 }, "itemCount is missing or not a whole number"],
    [{ s3Bucket: undefined }, "s3Bucket is missing"],
  ];
  for (const [over, message] of cases) {
    assert.throws(
      () => parseExportSummary(summaryText(over), "exports/summary"),
      (error: Error) =>
        error instanceof ExportManifestError &&
        error.message.startsWith("export manifest exports/summary: ") &&
        error.message.includes(message),
    );
  }
  assert.throws(() => parseExportSummary("{", "s"), /export manifest s: not JSON/);
});

Deno.test("a data file outside the export's data/ is refused, naming it and where it should be", () => {
  const summary = parseExportSummary(summaryText(), "s");
  for (
    const key of ["AWSDynamoDB/01600000000000-ffffffff/data/aaa.json.gz", "elsewhere/aaa.json.gz"]
  ) {
    assert.throws(() => parseExportFiles(fileLine(key, 5), summary, "files"), {
      name: "ExportManifestError",
      message: `export manifest files line 1: data file 2026-11/${key} is not in this export's ` +
        "2026-11/AWSDynamoDB/01700000000000-a1b2c3d4/data/",
    });
  }
});

Deno.test("the files manifest lists each data file; a count that falls short of the summary's is refused", () => {
  const summary = parseExportSummary(summaryText(), "s");
  const text = [
    fileLine("AWSDynamoDB/01700000000000-a1b2c3d4/data/aaa.json.gz", 3),
    fileLine("2026-11/AWSDynamoDB/01700000000000-a1b2c3d4/data/bbb.json.gz", 2),
    "",
  ].join("\n");
  const files = parseExportFiles(text, summary, "files");
  assert.deepEqual(files.map((f) => [f.key, f.itemCount]), [
    ["2026-11/AWSDynamoDB/01700000000000-a1b2c3d4/data/aaa.json.gz", 3],
    ["2026-11/AWSDynamoDB/01700000000000-a1b2c3d4/data/bbb.json.gz", 2],
  ]);
  assert.throws(
    () =>
      parseExportFiles(
        fileLine("AWSDynamoDB/01700000000000-a1b2c3d4/data/aaa.json.gz", 3),
        summary,
        "files",
      ),
    {
      name: "ExportManifestError",
      message: "export manifest files: its files hold 3 items, but the summary says 5",
    },
  );
  assert.throws(
    () =>
      parseExportFiles(
        [
          fileLine("AWSDynamoDB/01700000000000-a1b2c3d4/data/aaa.json.gz", 3),
          fileLine("AWSDynamoDB/01700000000000-a1b2c3d4/data/aaa.json.gz", 2),
        ]
          .join("\n"),
        summary,
        "files",
      ),
    {
      name: "ExportManifestError",
      message:
        "export manifest files line 2: data file 2026-11/AWSDynamoDB/01700000000000-a1b2c3d4/data/aaa.json.gz is listed twice",
    },
  );
  assert.throws(
    () => parseExportFiles(`${fileLine("a/data/x.json", 5)}\n`, summary, "files"),
    {
      name: "ExportManifestError",
      message:
        "export manifest files line 1: data file 2026-11/a/data/x.json is not a .json.gz file",
    },
  );
});

Deno.test("keys are taken relative to the prefix unless they already start with it", () => {
  assert.deepEqual(keyInBucket("", "AWSDynamoDB/x"), "AWSDynamoDB/x");
  assert.deepEqual(keyInBucket("p", "AWSDynamoDB/x"), "p/AWSDynamoDB/x");
  assert.deepEqual(keyInBucket("p", "p/AWSDynamoDB/x"), "p/AWSDynamoDB/x");
  // Only the prefix as a whole folder: "exp" does not hold "export2/x".
  assert.deepEqual(keyInBucket("exp", "export2/x"), "exp/export2/x");
});

Deno.test("a prefix written with a trailing slash names the same folder", () => {
  const summary = parseExportSummary(summaryText({ s3Prefix: "p/" }), "exports/summary");
  assert.equal(summary.s3Prefix, "p");
  assert.equal(
    summary.manifestFilesKey,
    "p/AWSDynamoDB/01700000000000-a1b2c3d4/manifest-files.json",
  );
  const already = parseExportSummary(
    summaryText({
      s3Prefix: "p//",
      manifestFilesS3Key: "p/AWSDynamoDB/01700000000000-a1b2c3d4/manifest-files.json",
    }),
    "exports/summary",
  );
  assert.equal(
    already.manifestFilesKey,
    "p/AWSDynamoDB/01700000000000-a1b2c3d4/manifest-files.json",
  );
});
