/**
 * `npm run backfill -- --from-export` against the stack (docs/sync-semantics.md,
 * "Backfills from an export"): refused with the command that turns PITR on when it is
 * off; with it on, a table that drifted (a row lost, a delete lost) is backfilled from
 * its export while the application keeps writing, and ends equal to DynamoDB: the
 * validator says match. It runs alone: the backfill's sweep covers the whole table.
 */

import assert from "node:assert/strict";
import {
  DeleteItemCommand,
  PutItemCommand,
  UpdateContinuousBackupsCommand,
} from "@aws-sdk/client-dynamodb";
import { ROOT } from "../local-stack/config.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { load, S, validate } from "./validator_fixtures.ts";

const TABLE = "firespring-backdoor-segments-dev";
const TARGET = "firespring_segments";

const segment = (id: string, name: string) => ({
  segment_id: S(id),
  name: S(name),
  segment_criteria: { M: { plan: S("gold") } },
});

async function setPitr(on: boolean, table = TABLE) {
  await dynamo().send(
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
    /export of firespring-backdoor-segments-dev: point-in-time recovery is DISABLED; an export needs it on: aws dynamodb update-continuous-backups --region us-east-1 --table-name firespring-backdoor-segments-dev/,
  );
});

Deno.test("a drifted table backfilled from its export under live writes ends equal to DynamoDB", async () => {
  const p = `exp-${crypto.randomUUID().slice(0, 8)}-`;
  await load(TARGET, Array.from({ length: 40 }, (_, i) => segment(`${p}${i}`, `n${i}`)), p);
  const sql = connectDb();
  const client = dynamo();
  try {
    // Drift: a row lost (deleted here only) and a delete lost (a row DynamoDB never had).
    await sql`delete from public.firespring_segments where segment_id = ${`${p}0`}`;
    const ghost = {
      op: "upsert",
      row: { segment_id: `${p}ghost`, segment_name: "ghost", segment_criteria: {} },
      seq: "1",
      changed_at: new Date(Date.now() - 86_400_000).toISOString(),
      source: "stream",
    };
    await sql`select sync.merge_changes(${TARGET}, ${JSON.stringify([ghost])}::text::jsonb)`;
    await setPitr(true);

    // The application writes while the export is made and loaded.
    const running = backfillFromExport();
    for (let i = 1; i <= 5; i++) {
      await client.send(
        new PutItemCommand({ TableName: TABLE, Item: segment(`${p}${i}`, `renamed${i}`) }),
      );
      await client.send(
        new DeleteItemCommand({ TableName: TABLE, Key: { segment_id: S(`${p}${10 + i}`) } }),
      );
      await client.send(
        new PutItemCommand({ TableName: TABLE, Item: segment(`${p}new${i}`, "new") }),
      );
    }
    const { code, text } = await running;
    assert.equal(code, 0, text);
    assert.match(text, /firespring_segments: job \d+, 1 files, \d+ items as of /);
    assert.match(text, /firespring_segments +\[#+\] .* done/);

    // Once the stream has delivered the live writes, the table is DynamoDB's.
    await eventually("the live writes to arrive", async () => {
      const [r] = await sql`select count(*)::int as n from public.firespring_segments
                            where segment_id like ${p + "%"}`;
      return r.n === 40 - 5 + 5 ? true : undefined;
    }, 60_000);
    const rows = await sql`select segment_id, segment_name from public.firespring_segments
                           where segment_id in (${`${p}0`}, ${`${p}ghost`}, ${`${p}1`}, ${`${p}11`})
                           order by segment_id`;
    assert.deepEqual(rows.map((r) => [r.segment_id, r.segment_name]), [
      [`${p}0`, "n0"],
      [`${p}1`, "renamed1"],
    ]);
    const checked = await validate(TARGET);
    assert.equal(checked.match, true, JSON.stringify(checked));
  } finally {
    await sql.end();
  }
});

Deno.test("a table whose export cannot start leaves the others' to load; the command says so and fails", async () => {
  const sql = connectDb();
  try {
    await setPitr(true);
    // The searches table has point-in-time recovery off: its export is refused.
    await setPitr(false, "firespring-backdoor-searches-dev");
    const { code, text } = await backfillFromExport([TARGET, "firespring_searches"]);
    assert.equal(code, 1, text);
    assert.match(
      text,
      /export of firespring-backdoor-searches-dev: point-in-time recovery is DISABLED/,
    );
    assert.match(text, /1 of 2 tables did not start \(above\); the others were loaded/);
    const [job] = await sql`select status from sync.backfill_jobs
                            where source_table = ${TABLE} and export_arn is not null
                            order by id desc limit 1`;
    assert.equal(job.status, "done", "the segments' export was loaded");
  } finally {
    await sql.end();
  }
});
