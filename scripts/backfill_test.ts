import assert from "node:assert/strict";
import { type Progress, progressLine } from "./backfill.ts";

const progress = (over: Partial<Progress>): Progress => ({
  job_id: "1",
  target_table: "firespring_actions",
  status: "running",
  segments_done: 1,
  total_segments: 4,
  items_scanned: 500,
  rows_written: 500,
  items_per_second: 100,
  ...over,
});

Deno.test("a Scan backfill's bar counts segments, its ETA from DynamoDB's item count", () => {
  const line = progressLine(progress({ source: "scan" }), 1000);
  assert.match(
    line,
    /\[#{12}-{12}\]\s+500\/1,000\s+items\s+500 rows\s+100\/s {2}segments 1\/4 {2}ETA 5s$/,
  );
});

Deno.test("an export backfill's bar counts files, its ETA from the export's own item count", () => {
  const line = progressLine(progress({ source: "export", expected_items: 2000 }), undefined);
  assert.match(line, /500\/2,000\s+items .* files 1\/4 {2}ETA 15s$/);
  assert.match(progressLine(progress({ source: "export", status: "done" }), undefined), /done$/);
});
