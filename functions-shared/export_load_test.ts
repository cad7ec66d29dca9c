import assert from "node:assert/strict";
import { type ExportFileClaim, loadExportJob } from "./export_load.ts";
import { fakeCpuMeter, fakeSql } from "./testing_fakes.ts";

const fileOf = (segment: number): ExportFileClaim => ({
  segment,
  data_key: `AWSDynamoDB/01/data/${segment}.json.gz`,
  item_count: 2,
  md5: "md5",
  next_line: 0,
  source_table: "firespring-backdoor-segments-dev",
  target_table: "firespring_segments",
  page_size: 2,
});

/**
 * A database that hands out `files` in order, then nothing, with no file of the job left
 * in flight; `sync.fail_segment` leaves the job `afterFail` (failed when the worker held
 * the lease), and the job's last status is `ended`.
 */
function jobDb(files: ExportFileClaim[], afterFail = "failed", ended = "done") {
  let status = "running";
  return fakeSql((s) => {
    if (s.text.includes("sync.claim_export_file")) return files.length ? [files.shift()] : [];
    if (s.text.includes("count(*)::int as n")) return [{ n: 0 }];
    if (s.text.includes("sync.fail_segment")) {
      status = afterFail;
      return [];
    }
    if (s.text.includes("select status, error from sync.backfill_jobs")) {
      return [{ status: status === "running" ? ended : status, error: null }];
    }
    return undefined;
  });
}

/** Loads job 7 with one worker; opening a file fails with `errors[its segment]`. */
function load(db: ReturnType<typeof jobDb>, errors: Record<number, Error>) {
  const lines: string[] = [];
  const done = loadExportJob("7", 1, "loader", {
    sql: db.sql,
    open: (key) => Promise.reject(errors[Number(key.match(/(\d+)\.json/)![1])]),
    exportTime: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (line) => lines.push(line),
    sleep: () => Promise.resolve(),
  });
  return { done, lines };
}

const left = (segment: number, message: string) =>
  `export backfill job 7 of firespring-backdoor-segments-dev: loader-0 left file ${segment} ` +
  `(AWSDynamoDB/01/data/${segment}.json.gz): ${message}`;

Deno.test("a worker whose checkpoint is refused leaves the file, fails nothing and claims the next", async () => {
  for (
    const [code, message] of [
      ["SY001", "backfill job 7 segment 3: worker loader-0 no longer holds the lease"],
      ["SY002", "backfill job 7 segment 3 of firespring-backdoor-segments-dev: the job is failed"],
    ]
  ) {
    const db = jobDb([fileOf(3), fileOf(4)]);
    const nextFile = new Error("file 4 opened");
    const { done, lines } = load(db, {
      3: Object.assign(new Error(message), { code }),
      4: nextFile,
    });
    await assert.rejects(done, nextFile, `${code}: the worker went on to file 4`);
    assert.deepEqual(
      db.matching("sync.fail_segment").map((s) => s.values[1]),
      [4],
      `${code} fails nothing of file 3`,
    );
    assert.equal(lines[0], left(3, message));
  }
});

Deno.test("a file that fails for its own reason fails its segment and the job, and is thrown", async () => {
  const db = jobDb([fileOf(3)]);
  const gone = new Error("NoSuchKey: AWSDynamoDB/01/data/3.json.gz");
  const { done } = load(db, { 3: gone });
  await assert.rejects(done, gone);
  const [failed] = db.matching("sync.fail_segment");
  assert.deepEqual(failed.values, ["7", 3, "loader-0", gone.message]);
});

Deno.test("an error met after the lease was taken over fails nothing: the new holder goes on", async () => {
  // sync.fail_segment leaves the job running: this worker no longer held the file.
  const db = jobDb([fileOf(3)], "running");
  const late = new Error("canceling statement due to statement timeout");
  const { done, lines } = load(db, { 3: late });
  await done;
  assert.deepEqual(lines, [left(3, late.message)]);
});

Deno.test("a job that ended other than done (cancelled) is thrown, naming the job", async () => {
  const db = jobDb([], "failed", "cancelled");
  const { done } = load(db, {});
  await assert.rejects(done, /export backfill job 7 ended cancelled/);
});
