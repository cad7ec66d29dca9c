import assert from "node:assert/strict";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { bySourceTable } from "../functions-shared/table_registry.ts";
import { fakeSql, type Statement } from "../functions-shared/testing_fakes.ts";
import { exportFiles } from "../local-stack/aws/export_layout.ts";
import { startExportBackfill } from "./export_backfill.ts";
import { describedExportProblem } from "./export_manifest_check.ts";
import { exportFileOpener } from "./export_s3.ts";

const spec = bySourceTable("firespring-backdoor-segments-dev")!;
const TABLE_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/firespring-backdoor-segments-dev";

/** A completed export of the table in a fake bucket, as DescribeExport reports it. */
async function anExport(id: string, tableArn = TABLE_ARN) {
  const seconds = Date.now() / 1000;
  const description: Record<string, unknown> = {
    ExportArn: `${tableArn}/export/${id}`,
    TableArn: tableArn,
    TableId: "table-id",
    ExportTime: seconds - 60,
    StartTime: seconds - 60,
    S3Bucket: "exports",
    S3Prefix: "p",
    ExportStatus: "COMPLETED",
  };
  const files = await exportFiles({
    description,
    endTime: Date.now(),
    items: [{ segment_id: { S: "a" } }],
    itemsPerFile: 10,
  });
  description.ExportManifest = files.summaryKey;
  description.ItemCount = 1;
  description.ExportType = "FULL_EXPORT";
  description.ExportFormat = "DYNAMODB_JSON";
  return { arn: String(description.ExportArn), description, objects: files.objects };
}

/** The table's stream, as DescribeTable gives it: on since a day ago. */
let streamOf = (): Record<string, unknown> => ({
  StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
  LatestStreamLabel: new Date(Date.now() - 86_400_000).toISOString().replace("Z", ""),
});

/** The command's clients, each a fake; what DynamoDB was asked, by command name. */
function deps(
  exports: Awaited<ReturnType<typeof anExport>>[],
  unfinished: unknown[],
  earlier: { remembered?: string; startError?: Error; pitr?: string } = {},
) {
  const asked: string[] = [];
  const dynamo = {
    config: { region: () => Promise.resolve("us-east-1") },
    send: (command: { constructor: { name: string }; input: { ExportArn?: string } }) => {
      const name = command.constructor.name.replace(/Command$/, "");
      asked.push(name);
      if (name === "DescribeTable") {
        return Promise.resolve({ Table: { ...streamOf(), TableArn: TABLE_ARN } });
      }
      if (name === "DescribeContinuousBackups") {
        return Promise.resolve({
          ContinuousBackupsDescription: {
            PointInTimeRecoveryDescription: {
              PointInTimeRecoveryStatus: earlier.pitr ?? "ENABLED",
            },
          },
        });
      }
      if (name === "ExportTableToPointInTime") {
        // The last export listed is the one a request starts.
        const started = exports.at(-1)!;
        return Promise.resolve({
          ExportDescription: {
            ...started.description,
            ExportTime: new Date(Number(started.description.ExportTime) * 1000),
            ExportStatus: "IN_PROGRESS",
          },
        });
      }
      if (name !== "DescribeExport") throw new Error(`not expected here: ${name}`);
      const found = exports.find((e) => e.arn === command.input.ExportArn);
      if (!found) {
        return Promise.reject(
          Object.assign(new Error("Export not found"), { name: "ExportNotFoundException" }),
        );
      }
      // As the SDK gives them: times as Dates.
      return Promise.resolve({
        ExportDescription: {
          ...found.description,
          ExportTime: new Date(Number(found.description.ExportTime) * 1000),
          StartTime: new Date(Number(found.description.StartTime) * 1000),
        },
      });
    },
  } as unknown as DynamoDBClient;
  const objects = new Map(exports.flatMap((e) => e.objects).map((o) => [o.key, o.bytes]));
  const s3 = {
    send: (command: { input: { Key: string } }) =>
      !objects.has(command.input.Key)
        ? Promise.reject(
          Object.assign(new Error("The specified key does not exist."), { name: "NoSuchKey" }),
        )
        : Promise.resolve({
          Body: {
            transformToString: () =>
              Promise.resolve(new TextDecoder().decode(objects.get(command.input.Key)!)),
          },
        }),
  } as unknown as S3Client;
  const db = fakeSql((s: Statement) => {
    if (s.text.startsWith("select id, export_arn, started_at from sync.backfill_jobs")) {
      return unfinished;
    }
    if (s.text.includes("sync.start_export_backfill")) {
      if (earlier.startError) throw earlier.startError;
      return [{ id: 99 }];
    }
    if (s.text.includes("sync.export_request_to_resume")) {
      return [{ arn: earlier.remembered ?? null }];
    }
    if (s.text.includes("sync.note_export_request")) return [{}];
    if (s.text.startsWith("delete from sync.export_requests")) return [];
    return undefined;
  });
  const lines: string[] = [];
  return {
    deps: {
      sql: db.sql,
      dynamo: () => dynamo,
      s3,
      log: (line: string) => void lines.push(line),
    },
    asked,
    lines,
    db,
    objects,
  };
}

Deno.test("a job a dead loader left unfinished is taken up, not exported again", async () => {
  const old = await anExport("old");
  // Its rows so far carry the read time it started with, whatever this version derives.
  const startedAt = new Date(Date.now() - 180_000);
  const run = deps([old], [{ id: 7, export_arn: old.arn, started_at: startedAt }]);
  const job = await startExportBackfill(run.deps, spec, { bucket: "exports", prefix: "p" }, "t");
  assert.equal(job.job, "7");
  assert.equal(job.readAt.getTime(), startedAt.getTime(), "the job's own read time");
  assert.deepEqual(run.asked, ["DescribeExport", "DescribeTable"], "no new export was asked for");
  assert.equal(run.db.matching("sync.start_export_backfill").length, 0, "no new job");
  assert.ok(run.lines.some((l) => /job 7 of this export is unfinished: taking it up/.test(l)));
});

Deno.test("a job taken up two days after its read time is not asked for the webhook's notes again", async () => {
  // It passed the stream's 24 h check when it started; the notes that vouched for it are
  // kept 48 h, and the fake database knows no query of them.
  const old = await anExport("old");
  const startedAt = new Date(Date.now() - 50 * 3600_000);
  const run = deps([old], [{ id: 7, export_arn: old.arn, started_at: startedAt }]);
  const before = streamOf;
  streamOf = () => ({
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    LatestStreamLabel: new Date(Date.now() - 30 * 86_400_000).toISOString().replace("Z", ""),
  });
  try {
    const job = await startExportBackfill(run.deps, spec, { bucket: "exports", prefix: "p" }, "t");
    assert.equal(job.job, "7");
    assert.equal(run.db.matching("stream_batches_applied").length, 0);
  } finally {
    streamOf = before;
  }
});

Deno.test("another export is refused while one of the table is unfinished, naming it and the way out", async () => {
  const [old, other] = [await anExport("old"), await anExport("other")];
  const run = deps([old, other], [{ id: 7, export_arn: old.arn }]);
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: other.arn }, "t"),
    (error: Error) =>
      error.message.startsWith(
        `export backfill of firespring-backdoor-segments-dev: job 7, of export ${old.arn}, is unfinished;`,
      ) &&
      error.message.includes("without --export-arn takes it up") &&
      error.message.includes(
        "update sync.backfill_jobs set status = 'cancelled', finished_at = now() where id = 7",
      ),
  );
  assert.deepEqual(run.asked, [], "DynamoDB was not asked anything");
});

Deno.test("a manifest that is not the export's own (another export's, or of another time) is refused", async () => {
  const [named, other] = [await anExport("named"), await anExport("other")];
  // The export's summary in S3 replaced by another export's.
  named.description.ExportManifest = other.description.ExportManifest;
  const run = deps([named, other], []);
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
    (error: Error) => {
      assert.match(
        error.message,
        new RegExp(
          `^export backfill of firespring-backdoor-segments-dev: s3://exports/\\S+ is of export ` +
            `${other.arn} as of \\S+, but DynamoDB gives export ${named.arn} as of \\S+: the ` +
            "manifest is not this export's$",
        ),
      );
      return true;
    },
  );
  // The right summary, but DynamoDB gives the export another time.
  const moved = await anExport("moved");
  moved.description.ExportTime = Number(moved.description.ExportTime) - 3600;
  const again = deps([moved], []);
  await assert.rejects(
    startExportBackfill(again.deps, spec, { bucket: "", prefix: "", exportArn: moved.arn }, "t"),
    /the manifest is not this export's$/,
  );
  assert.equal(again.db.matching("sync.start_export_backfill").length, 0, "no job");
});

Deno.test("without an unfinished job, the export named is loaded as a new job", async () => {
  const named = await anExport("named");
  const run = deps([named], []);
  const job = await startExportBackfill(
    run.deps,
    spec,
    { bucket: "", prefix: "", exportArn: named.arn },
    "t",
  );
  assert.equal(job.job, "99");
  assert.equal(job.items, 1);
  const [start] = run.db.matching("sync.start_export_backfill");
  assert.equal(start.values[1], named.arn);
});

Deno.test("an export an earlier run asked for and no job loaded is taken up, whatever the hour", async () => {
  const earlier = await anExport("earlier");
  earlier.description.ExportStatus = "IN_PROGRESS";
  const described = { ...earlier.description };
  const run = deps([earlier], [], { remembered: earlier.arn });
  // DescribeExport says IN_PROGRESS once (the look at it), then COMPLETED (the wait).
  let looks = 0;
  Object.defineProperty(earlier, "description", {
    get: () => looks++ === 0 ? described : { ...described, ExportStatus: "COMPLETED" },
  });
  const job = await startExportBackfill(run.deps, spec, { bucket: "exports", prefix: "p" }, "t");
  assert.equal(job.job, "99");
  assert.ok(!run.asked.includes("ExportTableToPointInTime"), "no new export was asked for");
  assert.equal(run.db.matching("sync.start_export_backfill")[0].values[1], earlier.arn);
  assert.equal(
    run.db.matching("delete from sync.export_requests").length,
    0,
    "kept: its job has it now, and a run stopped before the job would take it up again",
  );
  assert.ok(run.lines.includes(
    `firespring_segments: taking up export ${earlier.arn}, asked for by an earlier run (IN_PROGRESS)`,
  ));
});

Deno.test("an earlier run's export that failed, or that AWS no longer knows, is replaced by a new one, remembered before the wait", async () => {
  for (const gone of [true, false]) {
    const failed = await anExport("failed");
    Object.assign(failed.description, { ExportStatus: "FAILED", FailureMessage: "no access" });
    const fresh = await anExport("fresh");
    const run = deps(gone ? [fresh] : [failed, fresh], [], { remembered: failed.arn });
    const job = await startExportBackfill(run.deps, spec, { bucket: "exports", prefix: "p" }, "t");
    assert.equal(job.job, "99");
    assert.ok(run.asked.includes("ExportTableToPointInTime"), "a new export was asked for");
    assert.deepEqual(
      run.db.matching("sync.note_export_request")[0].values,
      ["firespring-backdoor-segments-dev", "exports", "p", fresh.arn],
    );
    assert.ok(
      run.lines.includes(
        `firespring_segments: export ${failed.arn}, asked for by an earlier run, ` +
          (gone ? "is unknown to DynamoDB" : "is FAILED (no access)") + ": asking for a new one",
      ),
      run.lines.join("\n"),
    );
  }
});

Deno.test("a table whose point-in-time recovery is off is refused before the wait for its young stream", async () => {
  const run = deps([await anExport("never")], [], { pitr: "DISABLED" });
  const before = streamOf;
  // A stream enabled a moment ago: a new export would wait about two minutes for it.
  streamOf = () => ({
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    LatestStreamLabel: new Date().toISOString().replace("Z", ""),
  });
  const slept: number[] = [];
  try {
    await assert.rejects(
      startExportBackfill(
        { ...run.deps, sleep: (ms: number) => Promise.resolve(void slept.push(ms)) },
        spec,
        { bucket: "exports", prefix: "p" },
        "t",
      ),
      /^ExportRequestError: export of firespring-backdoor-segments-dev: point-in-time recovery is DISABLED; an export needs it on: aws dynamodb update-continuous-backups --region us-east-1 --table-name firespring-backdoor-segments-dev /,
    );
    assert.deepEqual(slept, [], "refused at once, not after the wait");
    assert.ok(!run.asked.includes("ExportTableToPointInTime"));
    assert.equal(run.db.matching("sync.note_export_request").length, 0);
  } finally {
    streamOf = before;
  }
});

Deno.test("an export whose manifests S3 cannot give for now is kept for the next run to take up", async () => {
  const earlier = await anExport("earlier");
  const run = deps([earlier], [], { remembered: earlier.arn });
  const slow = Object.assign(new Error("Please reduce your request rate."), {
    name: "SlowDown",
    $metadata: { httpStatusCode: 503 },
  });
  run.deps.s3 = { send: () => Promise.reject(slow) } as unknown as S3Client;
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "exports", prefix: "p" }, "t"),
    /Please reduce your request rate/,
  );
  assert.equal(run.db.matching("delete from sync.export_requests").length, 0, "not forgotten");
});

Deno.test("a job another command made meanwhile is named, not a unique index", async () => {
  const named = await anExport("named");
  const clash = Object.assign(new Error("duplicate key value violates unique constraint"), {
    code: "23505",
    constraint_name: "backfill_jobs_one_unfinished_export_idx",
  });
  const run = deps([named], [], { startError: clash });
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
    {
      message: "export backfill of firespring-backdoor-segments-dev: another command made a " +
        "job of this table while this one waited; run the command again to take that job up",
    },
  );
});

Deno.test("each manifest is checked against its .checksum; the job records each file's ETag", async () => {
  const named = await anExport("named");
  const run = deps([named], []);
  const source = { bucket: "", prefix: "", exportArn: named.arn };
  await startExportBackfill(run.deps, spec, source, "t");
  const [start] = run.db.matching("sync.start_export_backfill");
  const files = JSON.parse(String(start.values[4]));
  assert.match(files[0].etag, /^[0-9a-f]{32}$/, "the manifest's etag, kept for the reads");

  const checksumKey = [...run.objects.keys()].find((k) => k.endsWith("manifest-files.checksum"))!;
  const checksum = run.objects.get(checksumKey)!;
  run.objects.set(checksumKey, new TextEncoder().encode("sha256:abc"));
  await startExportBackfill(run.deps, spec, source, "t");
  assert.ok(
    run.lines.some((l) =>
      /manifest-files\.json: its \.checksum \(sha256:abc\) is no MD5 in hex or base64; not checked$/
        .test(l)
    ),
    "a digest of another form is named, not taken for a mismatch",
  );
  run.objects.set(checksumKey, checksum);
  const filesKey = [...run.objects.keys()].find((k) => k.endsWith("manifest-files.json"))!;
  run.objects.set(
    filesKey,
    new TextEncoder().encode(" " + new TextDecoder().decode(run.objects.get(filesKey))),
  );
  await assert.rejects(
    startExportBackfill(run.deps, spec, source, "t"),
    new RegExp(
      `^Error: export backfill of firespring-backdoor-segments-dev: s3://exports/${filesKey}: ` +
        "its MD5 is [0-9a-f]{32}, but its .checksum says [0-9a-f]{32}: it is not the manifest the export wrote$",
    ),
  );
});

Deno.test("an export of a same-named table in another region is refused, naming both", async () => {
  const elsewhere = await anExport(
    "west",
    "arn:aws:dynamodb:us-west-2:000000000000:table/firespring-backdoor-segments-dev",
  );
  const run = deps([elsewhere], []);
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: elsewhere.arn }, "t"),
    / in us-west-2 is not the registered table, which is in us-east-1 /,
  );
  assert.equal(run.db.matching("sync.start_export_backfill").length, 0);
});

Deno.test("S3's own errors name the table and the object", async () => {
  const named = await anExport("named");
  const run = deps([named], []);
  for (const key of [...run.objects.keys()]) {
    if (key.endsWith("manifest-summary.json")) run.objects.delete(key);
  }
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
    /^Error: export backfill of firespring-backdoor-segments-dev: s3:\/\/exports\/.*manifest-summary\.json: The specified key does not exist\.$/,
  );
});

Deno.test("a data file whose ETag is not the manifest's is refused before a byte is read", async () => {
  let cancelled = false;
  const s3 = {
    send: () =>
      Promise.resolve({
        ETag: '"0123456789abcdef0123456789abcdef"',
        Body: {
          transformToWebStream: () => new ReadableStream({ cancel: () => void (cancelled = true) }),
        },
      }),
  } as unknown as S3Client;
  const open = exportFileOpener(s3, "exports");
  await assert.rejects(
    open("p/AWSDynamoDB/x/data/a.json.gz", "fedcba9876543210fedcba9876543210-1"),
    /^ExportDataError: export data file p\/AWSDynamoDB\/x\/data\/a\.json\.gz: its ETag is 0123456789abcdef0123456789abcdef, but the files manifest says fedcba9876543210fedcba9876543210-1: it is not the file the export wrote/,
  );
  assert.ok(cancelled, "its body is let go");
  assert.ok(await open("p/AWSDynamoDB/x/data/a.json.gz", "0123456789abcdef0123456789abcdef"));
  assert.ok(await open("p/AWSDynamoDB/x/data/a.json.gz"), "no ETag kept: not checked");
});

Deno.test("an export older than the table's stream, or of a table with no stream, is refused: the changes after it would be lost", async () => {
  const named = await anExport("named");
  const run = deps([named], []);
  const before = streamOf;
  streamOf = () => ({
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    LatestStreamLabel: new Date().toISOString().replace("Z", ""), // after the export
  });
  try {
    await assert.rejects(
      startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
      /^Error: export backfill of firespring-backdoor-segments-dev: export .* holds items as they were from .* \(its read time, up to 120 s before its export time\), before the table's stream began \(.*\): the changes between them are in neither; ask for a new export \(without --export-arn\)$/,
    );
    assert.equal(run.db.matching("sync.start_export_backfill").length, 0);
    assert.deepEqual(
      run.db.matching("delete from sync.export_requests").map((s) => s.values),
      [[named.arn]],
      "refused for good: forgotten, so the next run asks for a new export",
    );
    // No stream: refused, unless the operator says to load the snapshot alone.
    streamOf = () => ({ StreamSpecification: { StreamEnabled: false } });
    await assert.rejects(
      startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
      /has no stream: nothing after the export's read time \(.*\) would reach firespring_segments, and the table would be reported whole; .*or pass --without-stream/,
    );
    assert.equal(run.db.matching("sync.start_export_backfill").length, 0);
    await startExportBackfill(
      { ...run.deps, withoutStream: true },
      spec,
      { bucket: "", prefix: "", exportArn: named.arn },
      "t",
    );
    assert.ok(
      run.lines.some((l) =>
        / has no stream: nothing after the export's read time .* \(--without-stream\)/.test(l)
      ),
    );
    // A label that is no time: refused, not taken as covering the export.
    streamOf = () => ({
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
      LatestStreamLabel: "not-a-time",
    });
    await assert.rejects(
      startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
      /its stream's label "not-a-time" is not the time the stream was enabled/,
    );
  } finally {
    streamOf = before;
  }
});

Deno.test("an export's rows are stamped two minutes before its time, and its stream must cover them", async () => {
  // AWS: an export's items may be as they were up to two minutes before its export time
  // (export_manifest.ts, EXPORT_WINDOW_MS). Stamped at the export time, an older image
  // would win over a change made in them; the stream must have begun before.
  const named = await anExport("named");
  const exportTime = Number(named.description.ExportTime) * 1000;
  const before = streamOf;
  const streamSince = (at: number) => () => ({
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    LatestStreamLabel: new Date(at).toISOString().replace("Z", ""),
  });
  const source = { bucket: "", prefix: "", exportArn: named.arn };
  try {
    // A stream begun 90 s before the export time misses changes its items may lack.
    streamOf = streamSince(exportTime - 90_000);
    const late = deps([named], []);
    await assert.rejects(
      startExportBackfill(late.deps, spec, source, "t"),
      /holds items as they were from .* \(its read time, up to 120 s before its export time\), before the table's stream began/,
    );
    assert.equal(late.db.matching("sync.start_export_backfill").length, 0);
    // Begun 121 s before: the job starts, every row stamped 120 s before the export time.
    streamOf = streamSince(exportTime - 121_000);
    const run = deps([named], []);
    const job = await startExportBackfill(run.deps, spec, source, "t");
    const [start] = run.db.matching("sync.start_export_backfill");
    assert.equal((start.values[2] as Date).getTime(), exportTime - 120_000);
    assert.equal(job.readAt.getTime(), exportTime - 120_000);
    assert.ok(
      run.lines.some((l) =>
        l.includes(`stamped ${new Date(exportTime - 120_000).toISOString()} (an export's items`)
      ),
      run.lines.join("\n"),
    );
  } finally {
    streamOf = before;
  }
});

Deno.test("an unfinished job whose export is refused for good names the job and how to cancel it", async () => {
  const old = await anExport("old");
  const run = deps([old], [{
    id: 7,
    export_arn: old.arn,
    started_at: new Date(Date.now() - 60_000),
  }]);
  const before = streamOf;
  // The stream was enabled again after the export: the job can never be loaded.
  streamOf = () => ({
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    LatestStreamLabel: new Date().toISOString().replace("Z", ""),
  });
  try {
    await assert.rejects(
      startExportBackfill(run.deps, spec, { bucket: "exports", prefix: "p" }, "t"),
      (error: Error) => {
        assert.match(error.message, /before the table's stream began/);
        assert.match(
          error.message,
          /; job 7, of this export, is unfinished and every run would take it up again: cancel it, then run the command again for a new export: update sync\.backfill_jobs set status = 'cancelled', finished_at = now\(\) where id = 7$/,
        );
        return true;
      },
    );
  } finally {
    streamOf = before;
  }
});

Deno.test("a refused signature's echo of the canonical request is never printed", async () => {
  const named = await anExport("named");
  const run = deps([named], []);
  const dynamo = run.deps.dynamo();
  const refused = Object.assign(
    new Error(
      "The request signature we calculated does not match the signature you provided.\n\n" +
        "The Canonical String for this request should have been\n'POST\n/\n\n" +
        "x-amz-security-token:IQoJb3JpZ2luX2VjSECRET\n'\n\nThe String-to-Sign should have been\n'x'",
    ),
    { name: "InvalidSignatureException" },
  );
  const refusing = { ...dynamo, send: () => Promise.reject(refused) } as unknown as typeof dynamo;
  await assert.rejects(
    startExportBackfill(
      { ...run.deps, dynamo: () => refusing },
      spec,
      { bucket: "", prefix: "", exportArn: named.arn },
      "t",
    ),
    (error: Error) => {
      assert.equal(
        error.message,
        "export backfill of firespring-backdoor-segments-dev: The request signature we " +
          "calculated does not match the signature you provided.",
      );
      return true;
    },
  );
});

Deno.test("manifests that disagree with what DynamoDB says of the export are refused, naming how", () => {
  const arn = `${TABLE_ARN}/export/01-abc`;
  const folder = "p/AWSDynamoDB/01-abc/";
  const ok = {
    ExportManifest: `${folder}manifest-summary.json`,
    ItemCount: 3,
    ExportType: "FULL_EXPORT",
    ExportFormat: "DYNAMODB_JSON",
  } as const;
  const summary = { manifestFilesKey: `${folder}manifest-files.json`, itemCount: 3 };
  assert.equal(describedExportProblem(arn, ok, summary), undefined);
  assert.match(
    describedExportProblem(arn, ok, {
      ...summary,
      manifestFilesKey: "p/AWSDynamoDB/other/manifest-files.json",
    })!,
    /^its files manifest p\/AWSDynamoDB\/other\/manifest-files.json is not p\/AWSDynamoDB\/01-abc\/manifest-files.json$/,
  );
  assert.match(
    describedExportProblem(arn, {
      ...ok,
      ExportManifest: "p/AWSDynamoDB/other/manifest-summary.json",
    }, summary)!,
    /is not in the export's folder AWSDynamoDB\/01-abc\/$/,
  );
  assert.equal(
    describedExportProblem(arn, { ...ok, ItemCount: 5 }, summary),
    "it counts 3 items, DynamoDB 5 (ItemCount)",
  );
  assert.equal(
    describedExportProblem(arn, { ...ok, ItemCount: undefined }, summary),
    "it counts 3 items, DynamoDB none (ItemCount)",
  );
  assert.equal(
    describedExportProblem(arn, { ...ok, ExportType: "INCREMENTAL_EXPORT" }, summary),
    "the export is a INCREMENTAL_EXPORT, not a FULL_EXPORT",
  );
  assert.equal(
    describedExportProblem(arn, { ...ok, ExportFormat: "ION" }, summary),
    "the export is in ION, not DYNAMODB_JSON",
  );
});

Deno.test("an export whose manifests count other items than DynamoDB exported starts no job", async () => {
  const named = await anExport("counted");
  named.description.ItemCount = 5;
  const run = deps([named], []);
  await assert.rejects(
    startExportBackfill(run.deps, spec, { bucket: "", prefix: "", exportArn: named.arn }, "t"),
    /: it counts 1 items, DynamoDB 5 \(ItemCount\): the manifests are not this export's as DynamoDB gives it$/,
  );
  assert.equal(run.db.matching("sync.start_export_backfill").length, 0, "no job");
});
