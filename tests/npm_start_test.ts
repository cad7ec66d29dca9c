/**
 * `npm start` at a small scale, end to end: the demo data set, the backfill, the live
 * changes through the stream path, the validation and the report with its phase lines,
 * exiting 0 only when every table matches.
 */

import assert from "node:assert/strict";
import { TABLES } from "../functions-shared/table_registry.ts";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import { openProblems } from "../scripts/migration_report.ts";
import { connectDb } from "./stack_clients.ts";

Deno.test("npm start at scale 0.02 migrates every table and reports a match", async () => {
  // A lost-record check of the DynamoDB Local that the run replaces: its stream goes with
  // it, and must not read as replaced to the next hourly check (forgetOldStreams).
  const sql = connectDb();
  const oldStream = `arn:aws:dynamodb:us-east-1:000000000000:table/x/stream/old-${Date.now()}`;
  try {
    await sql`insert into sync.stream_checks (target_table, stream_arn, checked_at, shards)
              values ('firespring_segments', ${oldStream}, now(), '{}')
              on conflict (target_table) do update set stream_arn = excluded.stream_arn`;
    const out = await new Deno.Command(DENO_BIN, {
      args: ["run", "-A", "scripts/start.ts", "--scale", "0.02"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const report = new TextDecoder().decode(out.stdout);
    const progress = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, report + progress);
    // No password in anything it prints, the local stack's default one included.
    assert.doesNotMatch(report + progress, /:\/\/[^\s:@/]*:[^\s*@][^\s@]*@/);
    assert.match(progress, /postgres(ql)?:\/\/postgres:\*\*\*@/, "the URLs are printed, masked");
    assert.match(report, /Migration report/);
    const table = report.slice(report.indexOf("Migration report")).split("\n");
    const lines = table.filter((l) => /^(firespring-|Lead-|toledo-|total )/.test(l));
    assert.equal(lines.length, 10, "one line per table and a total");
    assert.ok(lines.every((l) => l.trimEnd().endsWith("match")), lines.join("\n"));
    // Distinct keys are the rows the items should make: a soft-deleted lead makes none.
    for (const line of lines) {
      const [, , keys, rows] = line.trim().split(/\s+/);
      assert.equal(keys, rows, `distinct keys = correct target rows: ${line}`);
    }
    assert.match(report, /stream records delivered again, late and out of order/);
    // An admin's edit, written back to DynamoDB and streamed back before its validation.
    assert.match(
      report,
      /^npm start: an admin renamed firespring_traffic_sources \[source_id=".+"\] to ".+": write-back applied$/m,
    );
    assert.match(report, /^phase admin edit +from/m);
    assert.match(report, /backfill [\d.]+s, live changes [\d.]+s, whole run [\d.]+s/);
    // A line per phase with its seconds: the stack, and each table's load, backfill and
    // validation, the live burst, drain and redelivery; none left running.
    assert.match(report, /^phase stack up +from +0\.0s to +[\d.]+s +[\d.]+s$/m);
    for (const name of TABLES.map((t) => t.targetTable)) {
      for (const phase of ["load", "backfill", "validate"]) {
        assert.match(report, new RegExp(`^phase ${phase} ${name} +from .* [\\d.]+s$`, "m"));
      }
    }
    for (const phase of ["live burst", "live drain", "live redelivery"]) {
      assert.match(report, new RegExp(`^phase ${phase} +from`, "m"));
    }
    assert.doesNotMatch(report, /still running/);
    const [left] = await sql`select count(*)::int as n from sync.stream_checks
                             where stream_arn = ${oldStream}`;
    assert.equal(left.n, 0, "the old DynamoDB Local's stream is forgotten");
  } finally {
    await sql`delete from sync.stream_checks where stream_arn = ${oldStream}`;
    await sql.end();
  }
});

Deno.test("npm start names every table with unmappable items or open dead letters", async () => {
  const sql = connectDb();
  const marker = `start-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await sql`insert into sync.dead_letters (source_table, target_table, record, reason)
              values ('firespring-backdoor-segments-dev', 'firespring_segments',
                      ${
      JSON.stringify({ marker })
    }::text::jsonb, ${`${marker}: value is not a number`})`;
    const lines = await openProblems(
      sql,
      new Map([["firespring_actions", { count: 1, reasons: ["a1: bad timestamp"] }]]),
    );
    assert.ok(lines.includes("firespring_actions: 1 unmappable source items"), lines.join("\n"));
    assert.ok(lines.includes("    a1: bad timestamp"), lines.join("\n"));
    assert.ok(
      lines.some((l) => /^firespring_segments: \d+ open dead letters/.test(l)),
      lines.join("\n"),
    );
    await sql`update sync.dead_letters set replayed_at = now() where record ->> 'marker' = ${marker}`;
    const after = await openProblems(
      sql,
      new Map([["firespring_actions", { count: 0, reasons: [] }]]),
    );
    assert.ok(!after.some((l) => l.includes(marker)), "a replayed letter is no open problem");
  } finally {
    await sql`delete from sync.dead_letters where record ->> 'marker' = ${marker}`;
    await sql.end();
  }
});
