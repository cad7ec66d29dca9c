/**
 * `npm run backfill -- --from-export` against the stack (docs/sync-semantics.md,
 * "Backfills from an export"): refused with the command that turns PITR on when it is
 * off; with it on, a table that drifted (a row lost, a delete lost) is backfilled from
 * its export while the application keeps writing, and ends equal to DynamoDB: the
 * validator says match. It runs beside files that write none of its tables (the leads,
 * and the dashboard's point-in-time recovery): the backfill's sweep covers the whole
 * table (scripts/e2e_plan.ts).
 */

import assert from "node:assert/strict";
import {
  DeleteItemCommand,
  PutItemCommand,
  UpdateContinuousBackupsCommand,
} from "@aws-sdk/client-dynamodb";
import { ROOT } from "../local-stack/config.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { load, S, validate } from "./validator_fixtures.ts";

// The leads (us-east-2): a table no other file of its batch writes.
const TARGET = "mmp_toledo_leads";
const { sourceTable: TABLE, region: REGION } = byTargetTable(TARGET)!;
// The table whose export is refused in the last test: no other file exports it.
const REFUSED = byTargetTable("toledo_dashboard")!;

const lead = (id: string, name: string) => ({
  id: S(id),
  name: S(name),
  status: S("new"),
});

async function setPitr(on: boolean, table = TABLE, region = REGION) {
  await dynamo(region).send(
    new UpdateContinuousBackupsCommand({
      TableName: table,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: on },
    }),
  );
}

/** Runs the command (for `targets`); its exit code and output. */
async function backfillFromExport(targets = [TARGET]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/backfill.ts", "--from-export", ...targets],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  return { code, text };
}

Deno.test("without point-in-time recovery the export backfill is refused with the command that turns it on", async () => {
  await setPitr(false);
  const { code, text } = await backfillFromExport();
  assert.equal(code, 1, text);
  assert.match(
    text,
    /export of Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE: point-in-time recovery is DISABLED; an export needs it on: aws dynamodb update-continuous-backups --region us-east-2 --table-name Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE/,
  );
});

Deno.test("a drifted table backfilled from its export under live writes ends equal to DynamoDB", async () => {
  const p = `exp-${crypto.randomUUID().slice(0, 8)}-`;
  await load(TARGET, Array.from({ length: 40 }, (_, i) => lead(`${p}${i}`, `n${i}`)), p);
  const sql = connectDb();
  const client = dynamo(REGION);
  try {
    // Drift: a row lost (deleted here only) and a delete lost (a row DynamoDB never had).
    await sql`delete from public.mmp_toledo_leads where lead_id = ${`${p}0`}`;
    const ghost = {
      op: "upsert",
      row: { lead_id: `${p}ghost`, name: "ghost", lead_data: {} },
      seq: "1",
      changed_at: new Date(Date.now() - 86_400_000).toISOString(),
      source: "stream",
    };
    await sql`select sync.merge_changes(${TARGET}, ${JSON.stringify([ghost])}::text::jsonb)`;
    await setPitr(true);

    // The application writes while the export is made and loaded. An export may hold an
    // item as it was up to a minute before its time (the stand-in draws each item's
    // moment, as AWS allows): most of these come out of it with their older image, or
    // still there, or not yet there, and the stream's records must win over those.
    const running = backfillFromExport();
    for (let i = 1; i <= 5; i++) {
      await client.send(
        new PutItemCommand({ TableName: TABLE, Item: lead(`${p}${i}`, `renamed${i}`) }),
      );
      await client.send(
        new DeleteItemCommand({ TableName: TABLE, Key: { id: S(`${p}${10 + i}`) } }),
      );
      await client.send(
        new PutItemCommand({ TableName: TABLE, Item: lead(`${p}new${i}`, "new") }),
      );
    }
    const { code, text } = await running;
    assert.equal(code, 0, text);
    // Its items' file, and an empty partition's (the stack's exports write one, as AWS may).
    assert.match(text, /mmp_toledo_leads: job \d+, 2 files, \d+ items as of .*, stamped /);
    assert.match(text, /mmp_toledo_leads +\[#+\] .* done/);

    // Once the stream has delivered the live writes, they are DynamoDB's: none lost to
    // the export's older images, and the row DynamoDB never had is gone.
    const live = [1, 2, 3, 4, 5].flatMap((i) => [`${p}${i}`, `${p}new${i}`, `${p}${10 + i}`]);
    const expected = [1, 2, 3, 4, 5].flatMap((i) => [
      [`${p}${i}`, `renamed${i}`],
      [`${p}new${i}`, "new"],
    ]).sort(([a], [b]) => a < b ? -1 : 1);
    const liveRows = async () =>
      (await sql`select lead_id, name from public.mmp_toledo_leads
                 where lead_id = any(${[...live, `${p}ghost`]}::text[])
                 order by lead_id`)
        .map((r) => [r.lead_id, r.name]);
    await eventually("the live writes to arrive", async () => {
      return JSON.stringify(await liveRows()) === JSON.stringify(expected) ? true : undefined;
    }, 60_000).catch(async (error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await liveRows())}`);
    });
    // The row lost here is back if the export held its item: it was written within the
    // minute before the export's time, which AWS may leave out of an export. Then the
    // validator finds it missing, and its repair brings it back.
    const checked = await validate(TARGET);
    const [lost] = await sql`select name from public.mmp_toledo_leads
                             where lead_id = ${`${p}0`}`;
    if (lost) {
      assert.equal(lost.name, "n0");
      assert.equal(checked.match, true, JSON.stringify(checked));
    } else {
      assert.deepEqual(
        { missing: checked.missing, unexpected: checked.unexpected, different: checked.different },
        { missing: [{ lead_id: `${p}0` }], unexpected: [], different: [] },
      );
      const repaired = await validate(TARGET, true);
      assert.equal(repaired.match, true, JSON.stringify(repaired));
      const [back] = await sql`select name from public.mmp_toledo_leads
                               where lead_id = ${`${p}0`}`;
      assert.equal(back?.name, "n0");
    }
  } finally {
    await sql.end();
  }
});

Deno.test("a table whose export cannot start leaves the others' to load; the command says so and fails", async () => {
  const sql = connectDb();
  try {
    await setPitr(true);
    // The dashboard's table has point-in-time recovery off: its export is refused.
    await setPitr(false, REFUSED.sourceTable, REFUSED.region);
    const { code, text } = await backfillFromExport([TARGET, REFUSED.targetTable]);
    assert.equal(code, 1, text);
    assert.match(
      text,
      /export of toledo-consulting-dashboard-data: point-in-time recovery is DISABLED/,
    );
    assert.match(text, /1 of 2 tables did not start \(above\); the others were loaded/);
    const [job] = await sql`select status from sync.backfill_jobs
                            where source_table = ${TABLE} and export_arn is not null
                            order by id desc limit 1`;
    assert.equal(job.status, "done", "the leads' export was loaded");
  } finally {
    await sql.end();
  }
});
