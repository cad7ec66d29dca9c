/**
 * `npm start` at a small scale, end to end: the demo data set, the backfill, the live
 * changes through the stream path, the validation and the report, exiting 0 only when
 * every table matches.
 */

import assert from "node:assert/strict";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";

Deno.test("npm start at scale 0.02 migrates every table and reports a match", async () => {
  const out = await new Deno.Command(DENO_BIN, {
    args: ["run", "-A", "scripts/start.ts", "--scale", "0.02"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const report = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, report + new TextDecoder().decode(out.stderr));
  assert.match(report, /Migration report/);
  const table = report.slice(report.indexOf("Migration report")).split("\n");
  const lines = table.filter((l) => /^(firespring-|Lead-|toledo-|total )/.test(l));
  assert.equal(lines.length, 10, "one line per table and a total");
  assert.ok(lines.every((l) => l.trimEnd().endsWith("match")), lines.join("\n"));
  assert.match(report, /stream records delivered again, late and out of order/);
  assert.match(report, /backfill [\d.]+s, live changes [\d.]+s, whole run [\d.]+s/);
});
