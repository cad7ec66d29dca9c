import assert from "node:assert/strict";
import { readBack } from "./testdata/export_read_back.ts";
import { exportPages } from "../../functions-shared/export_items.ts";
import { parseExportFiles, parseExportSummary } from "../../functions-shared/export_manifest.ts";
import { TableExports } from "./exports.ts";
import type { ErrorDecision } from "./errors.ts";
import type { Item } from "./capacity.ts";
import type { ExportVersions } from "./export_moments.ts";
import { seededRandom } from "./history.ts";
import { regionArn } from "./region_arns.ts";

type Body = Record<string, unknown>;
const TABLE_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/things";
const AUTH = "AWS4-HMAC-SHA256 Credential=local/20261128/us-east-1/dynamodb/aws4_request";

/** A table of `count` items behind a fake DynamoDB Local, a bucket, and a clock. */
function setup(
  count: number,
  options: {
    scanDelay?: Promise<void>;
    decideError?: (target: string) => ErrorDecision;
    defaultDuration?: boolean;
    versions?: ExportVersions;
    seed?: number;
    putDenied?: (keyId: string, bucket: string, key: string) => string | null;
  } = {},
) {
  const items: Body[] = Array.from({ length: count }, (_, i) => ({ id: { S: `k${i}` } }));
  let clock = 1_800_000_000_000;
  const objects = new Map<string, Uint8Array<ArrayBuffer>>();
  // The exports' timers, not run unless a test runs them: the clock is the test's.
  const timers: (() => void)[] = [];
  const exports = new TableExports({
    now: () => clock,
    itemsPerFile: 2,
    minExportMs: options.defaultDuration ? undefined : 5_000,
    decideError: options.decideError,
    versions: options.versions,
    random: seededRandom(options.seed ?? 1),
    timer: (_ms, run) => timers.push(run),
    storage: {
      bucketExists: (bucket) => Promise.resolve(bucket === "exports"),
      put: (bucket, key, bytes) => {
        objects.set(`${bucket}/${key}`, new Uint8Array(bytes));
        return Promise.resolve();
      },
      putDenied: options.putDenied,
    },
    upstream: async (_headers, operation, body) => {
      if (operation === "DescribeTable") {
        if (body.TableName !== "things") throw new Error("ResourceNotFoundException");
        const KeySchema = [{ AttributeName: "id", KeyType: "HASH" }];
        return { Table: { TableName: "things", TableArn: TABLE_ARN, TableId: "t-1", KeySchema } };
      }
      await options.scanDelay;
      return { Items: [...items] };
    },
  });
  const call = async (operation: string, body: Body) => {
    const request = new Request("http://dynamodb", {
      method: "POST",
      headers: { "x-amz-target": `DynamoDB_20120810.${operation}`, authorization: AUTH },
      body: JSON.stringify(body),
    });
    const response = await exports.handle(request, () => {
      items.push({ id: { S: "written" } });
      return Promise.resolve(new Response("{}"));
    });
    return { status: response.status, json: await response.json() as Body };
  };
  return { call, items, objects, timers, tick: (ms: number) => clock += ms };
}

const errorType = (json: Body) => String(json.__type).split("#")[1];

/** Turns point-in-time recovery on for the table, as an export needs. */
async function pitrOn(call: ReturnType<typeof setup>["call"]): Promise<void> {
  await call("UpdateContinuousBackups", {
    TableName: "things",
    PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
  });
}

Deno.test("an export needs point-in-time recovery on, and the table's own ARN", async () => {
  const { call } = setup(1);
  let answer = await call("ExportTableToPointInTime", { TableArn: TABLE_ARN, S3Bucket: "exports" });
  assert.equal(answer.status, 400);
  assert.equal(errorType(answer.json), "PointInTimeRecoveryUnavailableException");
  assert.match(String(answer.json.message), /not enabled for table 'things'/);
  answer = await call("ExportTableToPointInTime", {
    TableArn: `${TABLE_ARN}x`,
    S3Bucket: "exports",
  });
  assert.equal(errorType(answer.json), "TableNotFoundException");
  answer = await call("DescribeContinuousBackups", { TableName: "things" });
  assert.deepEqual(
    (answer.json.ContinuousBackupsDescription as Body).PointInTimeRecoveryDescription,
    { PointInTimeRecoveryStatus: "DISABLED" },
  );
});

Deno.test("an export stays IN_PROGRESS for a while, then its files read back as the table's items", async () => {
  const { call, objects, tick } = setup(5);
  await pitrOn(call);
  tick(1000);
  const started = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
    S3Prefix: "full",
  });
  assert.equal(started.status, 200);
  const arn = (started.json.ExportDescription as Body).ExportArn;
  assert.equal((started.json.ExportDescription as Body).ExportStatus, "IN_PROGRESS");
  await new Promise((resolve) => setTimeout(resolve, 50));
  let described = await call("DescribeExport", { ExportArn: arn });
  assert.equal((described.json.ExportDescription as Body).ExportStatus, "IN_PROGRESS");
  tick(5000);
  described = await call("DescribeExport", { ExportArn: arn });
  const d = described.json.ExportDescription as Body;
  assert.equal(d.ExportStatus, "COMPLETED");
  assert.equal(d.ItemCount, 5);
  const token = (started.json.ExportDescription as Body).ClientToken;
  const again = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
    S3Prefix: "full",
    ClientToken: token,
  });
  assert.equal(
    (again.json.ExportDescription as Body).ExportArn,
    arn,
    "same ClientToken, same export",
  );
  // The same token with another parameter, within 8 hours of the export's end: refused.
  const elsewhere = () =>
    call("ExportTableToPointInTime", {
      TableArn: TABLE_ARN,
      S3Bucket: "exports",
      S3Prefix: "elsewhere",
      ClientToken: token,
    });
  const other = await elsewhere();
  assert.equal(other.status, 400);
  assert.equal(errorType(other.json), "ImportConflictException");
  assert.match(String(other.json.message), /used within the last 8 hours with another S3Prefix/);
  // Any other parameter too (encryption, the bucket's owner), not the table and place alone.
  const encrypted = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
    S3Prefix: "full",
    S3SseAlgorithm: "KMS",
    ClientToken: token,
  });
  assert.equal(errorType(encrypted.json), "ImportConflictException");
  assert.match(String(encrypted.json.message), /with another S3SseAlgorithm/);

  const text = (key: string) => new TextDecoder().decode(objects.get(`exports/${key}`)!);
  const summary = parseExportSummary(text(String(d.ExportManifest)), "summary");
  assert.equal(summary.exportTime.getTime(), 1_800_000_001_000);
  // The manifest names the region the export was asked in, as the proxy's edge answers
  // DescribeExport (region_arns.ts), not DynamoDB Local's `ddblocal`.
  assert.equal(summary.exportArn, regionArn(String(arn), "us-east-1"));
  assert.equal(summary.tableArn, regionArn(TABLE_ARN, "us-east-1"));
  assert.match(summary.tableArn, /^arn:aws:dynamodb:us-east-1:000000000000:table\/things$/);
  const files = parseExportFiles(text(summary.manifestFilesKey), summary, "files");
  // Five items two a file, and an empty partition's file among them, of no bytes.
  assert.deepEqual(files.map((f) => f.itemCount), [2, 0, 2, 1]);
  assert.equal(objects.get(`exports/${files[1].key}`)!.byteLength, 0);
  // The manifests name keys in the bucket, prefix included, as real exports do.
  assert.match(text(String(d.ExportManifest)), /"manifestFilesS3Key":"full\/AWSDynamoDB\//);
  for (const line of text(summary.manifestFilesKey).trim().split("\n")) {
    assert.match(JSON.parse(line).dataFileS3Key, /^full\/AWSDynamoDB\//);
  }
  const ids: unknown[] = [];
  for (const file of files) {
    const body = new Blob([objects.get(`exports/${file.key}`)!]).stream();
    for await (const page of exportPages(body, file, 10)) {
      ids.push(...page.items.map((i) => i.id.S));
    }
  }
  assert.deepEqual(ids, ["k0", "k1", "k2", "k3", "k4"]);
  const exportId = String(arn).split("/export/")[1];
  assert.ok(objects.has(`exports/full/AWSDynamoDB/${exportId}/_started`));

  // 8 hours after the export ended, the token is a new request's.
  tick(8 * 3600_000);
  const later = await elsewhere();
  assert.equal(later.status, 200);
  assert.notEqual((later.json.ExportDescription as Body).ExportArn, arn, "a new export");
});

Deno.test("an empty table's export has one data file of no bytes, which reads back as no item", async () => {
  const { call, objects, tick } = setup(0);
  await pitrOn(call);
  const started = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
  });
  tick(5000);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const described = await call("DescribeExport", {
    ExportArn: (started.json.ExportDescription as Body).ExportArn,
  });
  const d = described.json.ExportDescription as Body;
  assert.equal(d.ExportStatus, "COMPLETED");
  const text = (key: string) => new TextDecoder().decode(objects.get(`exports/${key}`)!);
  const summary = parseExportSummary(text(String(d.ExportManifest)), "summary");
  const [file, ...more] = parseExportFiles(text(summary.manifestFilesKey), summary, "files");
  assert.equal(more.length, 0);
  assert.equal(objects.get(`exports/${file.key}`)!.byteLength, 0, "an empty file");
  const body = new Blob([objects.get(`exports/${file.key}`)!]).stream();
  for await (const page of exportPages(body, file, 10)) assert.equal(page.items.length, 0);
});

Deno.test("an export to a bucket that does not exist ends FAILED with S3NoSuchBucket", async () => {
  const { call, tick } = setup(1);
  await pitrOn(call);
  const started = await call("ExportTableToPointInTime", { TableArn: TABLE_ARN, S3Bucket: "nope" });
  tick(5000);
  await new Promise((resolve) => setTimeout(resolve, 10));
  const described = await call("DescribeExport", {
    ExportArn: (started.json.ExportDescription as Body).ExportArn,
  });
  assert.equal((described.json.ExportDescription as Body).ExportStatus, "FAILED");
  assert.equal((described.json.ExportDescription as Body).FailureCode, "S3NoSuchBucket");
  assert.equal(
    errorType((await call("DescribeExport", { ExportArn: "x" })).json),
    "ExportNotFoundException",
  );
  const named = await call("ExportTableToPointInTime", { TableArn: TABLE_ARN, S3Bucket: "-bad-" });
  assert.equal(errorType(named.json), "ValidationException");
});

Deno.test("an ExportTime before PITR or in the past is refused", async () => {
  const { call, tick } = setup(2);
  await pitrOn(call);
  tick(10_000);
  const early = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
    ExportTime: 1_700_000_000,
  });
  assert.equal(errorType(early.json), "InvalidExportTimeException");
  const past = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
    ExportTime: 1_800_000_005,
  });
  assert.match(String(past.json.message), /exports only the present/);
});

Deno.test("writes are not held while an export's items are read, which is when it completes", async () => {
  let release!: () => void;
  const { call, items, objects, tick } = setup(2, {
    scanDelay: new Promise<void>((r) => release = r),
  });
  await call("UpdateContinuousBackups", PITR_ON);
  const started = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
  });
  const ExportArn = (started.json.ExportDescription as Body).ExportArn;
  // A write after the request, before the export completes: in the export.
  await call("PutItem", { TableName: "things" });
  assert.equal(items.length, 3);
  tick(5000);
  const describing = call("DescribeExport", { ExportArn }); // due: its items are read now
  await new Promise((resolve) => setTimeout(resolve, 10));
  let wrote = false;
  const writing = call("PutItem", { TableName: "things" }).then(() => wrote = true);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(wrote, true, "the write went on while the table was read");
  release();
  await writing;
  const d = (await describing).json.ExportDescription as Body;
  assert.equal(d.ExportStatus, "COMPLETED");
  assert.equal(d.ExportTime, 1_800_000_000, "the export time is the request's instant");
  assert.equal(d.StartTime, 1_800_000_000);
  const ids = (await readBack(objects, d)).map((item) => (item.id as Body).S);
  assert.deepEqual(ids.slice(0, 3), ["k0", "k1", "written"]);
});

Deno.test("an export no one asks about completes when its time comes", async () => {
  const { call, objects, timers, tick } = setup(3);
  await call("UpdateContinuousBackups", PITR_ON);
  const started = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
  });
  assert.equal(timers.length, 1);
  assert.equal(objects.size, 0, "nothing read or written at the request");
  timers[0]();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(objects.size > 0, "its files written");
  tick(5000);
  const described = await call("DescribeExport", {
    ExportArn: (started.json.ExportDescription as Body).ExportArn,
  });
  assert.equal((described.json.ExportDescription as Body).ItemCount, 3);
});

Deno.test("an export request that fails after it took effect is found again by its ClientToken", async () => {
  const decisions: ErrorDecision[] = ["fail after forwarding"];
  const { call } = setup(3, {
    decideError: (target) =>
      target.endsWith("ExportTableToPointInTime") ? decisions.shift() ?? "none" : "none",
  });
  await pitrOn(call);
  const request = { TableArn: TABLE_ARN, S3Bucket: "exports", ClientToken: "token-1" };
  const first = await call("ExportTableToPointInTime", request);
  assert.equal(first.status, 500, "the export started, its answer lost");
  assert.equal(errorType(first.json), "InternalServerError");
  const again = await call("ExportTableToPointInTime", request);
  assert.equal(again.status, 200);
  const listed = await call("ListExports", {});
  const summaries = listed.json.ExportSummaries as Body[];
  assert.equal(summaries.length, 1, "one export, not two");
  assert.equal(
    (again.json.ExportDescription as Body).ExportArn,
    summaries[0].ExportArn,
    "the retry answers the export the lost answer started",
  );
});

const PITR_ON = {
  TableName: "things",
  PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
};

Deno.test("an ExportTime in the future, or a moment before PITR was turned on, is outside the window", async () => {
  const { call } = setup(1);
  await call("UpdateContinuousBackups", PITR_ON);
  for (const ExportTime of [1_800_000_060, 1_800_000_000.001, 1_799_999_999.5]) {
    const answer = await call("ExportTableToPointInTime", {
      TableArn: TABLE_ARN,
      S3Bucket: "exports",
      ExportTime,
    });
    assert.equal(answer.status, 400, String(ExportTime));
    assert.equal(errorType(answer.json), "InvalidExportTimeException");
    assert.match(String(answer.json.message), /outside the table's PITR window/);
  }
  const listed = await call("ListExports", {});
  assert.deepEqual(listed.json.ExportSummaries, []);
});

Deno.test("an export names its table by the table's own ARN, not another account's or region's", async () => {
  const { call } = setup(1);
  await call("UpdateContinuousBackups", PITR_ON);
  for (
    const TableArn of [
      "arn:aws:dynamodb:ddblocal:111111111111:table/things",
      "arn:aws:dynamodb:us-east-1:000000000000:table/things",
    ]
  ) {
    const answer = await call("ExportTableToPointInTime", { TableArn, S3Bucket: "exports" });
    assert.equal(answer.status, 400, TableArn);
    assert.equal(errorType(answer.json), "TableNotFoundException");
  }
});

Deno.test("an export request that fails before it took effect starts no export", async () => {
  const decisions: ErrorDecision[] = ["fail before forwarding"];
  const { call } = setup(1, {
    decideError: (target) =>
      target.endsWith("ExportTableToPointInTime") ? decisions.shift() ?? "none" : "none",
  });
  await call("UpdateContinuousBackups", PITR_ON);
  const failed = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
  });
  assert.equal(failed.status, 500);
  assert.equal(errorType(failed.json), "InternalServerError");
  assert.deepEqual((await call("ListExports", {})).json.ExportSummaries, []);
});

Deno.test("by default an export stays IN_PROGRESS for 2 seconds", async () => {
  const { call, tick } = setup(1, { defaultDuration: true });
  await call("UpdateContinuousBackups", PITR_ON);
  const started = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
  });
  const ExportArn = (started.json.ExportDescription as Body).ExportArn;
  const status = async () =>
    ((await call("DescribeExport", { ExportArn })).json.ExportDescription as Body).ExportStatus;
  await new Promise((resolve) => setTimeout(resolve, 10)); // the files written
  tick(1_999);
  assert.equal(await status(), "IN_PROGRESS");
  tick(1);
  assert.equal(await status(), "COMPLETED");
});

/** The scope/table the exports' versions name (AUTH's access key and region). */
const SCOPED = "local/us-east-1/things";
const T0 = 1_800_000_000_000;

/** One change of a key's image at `at` (ms), as the proxy's recent writes would hold it. */
interface Change {
  id: string;
  at: number;
  before: Body | null;
  after: Body | null;
}

/** A versions source holding `changes` (one per key) for the table `things`. */
function fakeVersions(changes: Change[]): ExportVersions {
  const find = (table: string, id: unknown) =>
    table === SCOPED ? changes.find((c) => c.id === id) : undefined;
  return {
    keys: (table) => changes.filter((c) => find(table, c.id)).map((c) => ({ id: { S: c.id } })),
    at: (table, key, moment) => {
      const change = find(table, key.id.S);
      if (!change) return undefined;
      return (moment >= change.at ? change.after : change.before) as Item | null;
    },
  };
}

/**
 * The items of `n` exports asked for at `exportTime` (T0, a whole minute, unless told) and
 * read 5 s later, of a table whose items now are `current` and whose recent writes are
 * `changes`: each export as a map by id.
 */
async function exportsOf(current: Body[], changes: Change[], n = 30, exportTime = T0) {
  const { call, items, objects, tick } = setup(0, { versions: fakeVersions(changes), seed: 42 });
  items.push(...current);
  await call("UpdateContinuousBackups", PITR_ON);
  tick(exportTime - T0);
  const arns: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const started = await call("ExportTableToPointInTime", {
      TableArn: TABLE_ARN,
      S3Bucket: "exports",
    });
    arns.push((started.json.ExportDescription as Body).ExportArn);
  }
  tick(5000);
  const exported: Map<unknown, Body>[] = [];
  for (const ExportArn of arns) {
    const d = (await call("DescribeExport", { ExportArn })).json.ExportDescription as Body;
    assert.equal(d.ExportTime, exportTime / 1000);
    const read = await readBack(objects, d);
    exported.push(new Map(read.map((item) => [(item.id as Body).S, item])));
  }
  return exported;
}

const item = (id: string, v?: number) => ({
  id: { S: id },
  ...(v === undefined ? {} : { v: { N: String(v) } }),
});

Deno.test("a key changed 30 s before the export time may be exported as it was before", async () => {
  const changes = [{ id: "a", at: T0 - 30_000, before: item("a", 1), after: item("a", 2) }];
  const exported = await exportsOf([item("a", 2), item("quiet", 7)], changes);
  const seen = new Set(exported.map((e) => JSON.stringify(e.get("a"))));
  assert.deepEqual(seen, new Set([JSON.stringify(item("a", 1)), JSON.stringify(item("a", 2))]));
  // A key not written within the window is as the Scan read it, in every export.
  for (const e of exported) assert.deepEqual(e.get("quiet"), item("quiet", 7));
});

Deno.test("a key deleted 30 s before may still be exported; one created then may be missing", async () => {
  const changes = [
    { id: "gone", at: T0 - 30_000, before: item("gone", 1), after: null },
    { id: "new", at: T0 - 30_000, before: null, after: item("new", 1) },
  ];
  const exported = await exportsOf([item("new", 1)], changes);
  const present = (id: string) => exported.filter((e) => e.has(id)).length;
  assert.ok(present("gone") > 0 && present("gone") < exported.length, `${present("gone")}`);
  assert.ok(present("new") > 0 && present("new") < exported.length, `${present("new")}`);
  for (const e of exported) {
    if (e.has("gone")) assert.deepEqual(e.get("gone"), item("gone", 1));
  }
});

Deno.test("a change before the window's start, a minute before the export time's minute, is always in it", async () => {
  // Exported at :45 past a minute: the window starts 105 s before.
  const exportTime = T0 + 45_000;
  const changes = [
    { id: "old", at: T0 - 60_001, before: item("old", 1), after: item("old", 2) },
    { id: "dropped", at: T0 - 61_000, before: item("dropped", 1), after: null },
  ];
  const exported = await exportsOf([item("old", 2)], changes, 40, exportTime);
  for (const e of exported) {
    assert.deepEqual(e.get("old"), item("old", 2));
    assert.equal(e.has("dropped"), false);
  }
});

Deno.test("a change 90 s before an export time at :45 past a minute may be exported as it was before", async () => {
  // AWS's times are whole minutes: at 2:25:45, only what was committed by 2:24:00 is sure.
  const exportTime = T0 + 45_000;
  const changes = [
    { id: "a", at: exportTime - 90_000, before: item("a", 1), after: item("a", 2) },
  ];
  const exported = await exportsOf([item("a", 2)], changes, 40, exportTime);
  const seen = new Set(exported.map((e) => JSON.stringify(e.get("a"))));
  assert.deepEqual(seen, new Set([JSON.stringify(item("a", 1)), JSON.stringify(item("a", 2))]));
});

Deno.test("an export is written as its requester: one whose key may not put the bucket's objects ends FAILED with S3's AccessDenied", async () => {
  const denied: string[] = [];
  const { call, tick, objects } = setup(1, {
    putDenied: (keyId, bucket, key) => {
      denied.push(`${keyId} ${bucket}/${key}`);
      return keyId === "local" ? "User: ... is not authorized to perform: s3:PutObject" : null;
    },
  });
  await pitrOn(call);
  const started = await call("ExportTableToPointInTime", {
    TableArn: TABLE_ARN,
    S3Bucket: "exports",
    S3Prefix: "sync",
  });
  assert.equal((started.json.ExportDescription as Body).ExportStatus, "IN_PROGRESS", "accepted");
  tick(5000);
  await new Promise((resolve) => setTimeout(resolve, 10));
  const d = (await call("DescribeExport", {
    ExportArn: (started.json.ExportDescription as Body).ExportArn,
  })).json.ExportDescription as Body;
  assert.equal(d.ExportStatus, "FAILED");
  assert.equal(typeof d.EndTime, "number", "ended, as a failed export on AWS has");
  assert.equal(d.FailureCode, "S3AccessDenied");
  assert.match(
    String(d.FailureMessage),
    /^Access Denied \(Service: Amazon S3; Status Code: 403; Error Code: AccessDenied;/,
  );
  assert.equal(objects.size, 0, "nothing written");
  assert.equal(denied.length, 1);
  assert.match(denied[0], /^local exports\/sync\/AWSDynamoDB\/[^/]+\/manifest-summary\.json$/);
});
