import assert from "node:assert/strict";
import { type ExportFileClaim, loadExportJob } from "./export_load.ts";
import { fakeCpuMeter, fakeSql } from "./testing_fakes.ts";

const file: ExportFileClaim = {
  segment: 3,
  data_key: "AWSDynamoDB/01/data/a.json.gz",
  item_count: 2,
  md5: "md5",
  next_line: 0,
  source_table: "firespring-backdoor-segments-dev",
  target_table: "firespring_segments",
  page_size: 2,
};

/** A database that hands out `file` once, then nothing, with no file of the job left. */
function oneFileDb() {
  let claimed = false;
  return fakeSql((s) => {
    if (s.text.includes("sync.claim_export_file")) {
      if (claimed) return [];
      claimed = true;
      return [file];
    }
    if (s.text.includes("count(*)::int as n")) return [{ n: 0 }];
    if (s.text.includes("sync.fail_segment")) return [];
    return undefined;
  });
}

/** Loads job 7 with one worker whose file fails to open with `error`; answers the log. */
async function loadFailing(db: ReturnType<typeof oneFileDb>, error: Error): Promise<string[]> {
  const lines: string[] = [];
  await loadExportJob("7", 1, "loader", {
    sql: db.sql,
    open: () => Promise.reject(error),
    exportTime: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (line) => lines.push(line),
    sleep: () => Promise.resolve(),
  });
  return lines;
}

Deno.test("a worker whose file was taken over leaves it: no segment or job failed", async () => {
  for (
    const [code, message] of [
      ["SY001", "backfill job 7 segment 3: worker loader-0 no longer holds the lease"],
      ["SY002", "backfill job 7 segment 3 of firespring-backdoor-segments-dev: the job is failed"],
    ]
  ) {
    const db = oneFileDb();
    const lines = await loadFailing(db, Object.assign(new Error(message), { code }));
    assert.deepEqual(db.matching("sync.fail_segment"), [], `${code} fails nothing`);
    assert.deepEqual(lines, [
      `export backfill job 7 of firespring-backdoor-segments-dev: loader-0 left file 3 ` +
      `(AWSDynamoDB/01/data/a.json.gz): ${message}`,
    ]);
  }
});

Deno.test("a file that fails for its own reason fails its segment and the job, and is thrown", async () => {
  const db = oneFileDb();
  const gone = new Error("NoSuchKey: AWSDynamoDB/01/data/a.json.gz");
  await assert.rejects(loadFailing(db, gone), gone);
  const [failed] = db.matching("sync.fail_segment");
  assert.deepEqual(failed.values, ["7", 3, "loader-0", gone.message]);
});
