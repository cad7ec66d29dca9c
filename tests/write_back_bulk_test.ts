/**
 * A bulk edit written back (docs/interfaces.md, "write-back"): one admin statement
 * through the Data API edits 600 rows, and each reaches its DynamoDB item, in runs of the
 * `write-back` function that count their isolate's CPU and hand on before the hosted
 * 2,000 ms hard limit. Before they counted it, isolate after isolate was killed mid-run
 * (each edit costs the function about 5 ms of CPU). Shares the stack: keys of its own.
 */

import assert from "node:assert/strict";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { isolateLogOffset, killsSince } from "../local-stack/supabase/isolate_log.ts";
import { asAdmin } from "../scripts/admin_edit.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { load, N, S } from "./validator_fixtures.ts";

const spec = byTargetTable("toledo_dashboard")!;
const ADMIN = { sub: "00000000-0000-0000-0000-00000000ad02", email: "bulk-admin@example.test" };

Deno.test("a bulk edit of 600 rows is written back by runs that hand on, no isolate killed", async () => {
  const p = `wbb-${crypto.randomUUID().slice(0, 8)}`;
  const n = 600;
  const sql = connectDb();
  const offset = isolateLogOffset();
  try {
    const items = Array.from({ length: n }, (_, i) => ({
      pk: S(`${p}-${i}`),
      sk: S("a"),
      metrics: { M: { v: N(1) } },
    }));
    await load("toledo_dashboard", items, p);
    await asAdmin(sql, ADMIN, async (tx) => {
      await tx`update public.toledo_dashboard set metrics = '{"v": 2}' where pk like ${p + "-%"}`;
    });
    const ended = await eventually("every write-back of the bulk edit to end", async () => {
      const [r] = await sql`
        select count(*)::int as total,
               count(*) filter (where status = 'applied')::int as applied,
               count(*) filter (where status <> 'pending')::int as ended,
               string_agg(distinct detail, '; ') filter (where status not in ('applied', 'pending'))
                 as problems
        from sync.write_backs
        where target_table = 'toledo_dashboard' and row_key ->> 'pk' like ${p + "-%"}`;
      return r.ended === n ? r : undefined;
    }, 240_000);
    assert.deepEqual(
      { total: ended.total, applied: ended.applied },
      { total: n, applied: n },
      String(ended.problems),
    );
    for (const i of [0, n / 2, n - 1]) {
      const { Item } = await dynamo(spec.region).send(
        new GetItemCommand({
          TableName: spec.sourceTable,
          Key: { pk: S(`${p}-${i}`), sk: S("a") },
          ConsistentRead: true,
        }),
      );
      assert.deepEqual(Item?.metrics, { M: { v: { N: "2" } } }, `${p}-${i} in DynamoDB`);
    }
    assert.deepEqual(killsSince(offset, ["write-back"]), [], "no write-back isolate killed");
  } finally {
    await sql.end();
  }
});

Deno.test("an admin's statement runs under the Data API's timeouts: 8 s a statement, 8 s for a lock", async () => {
  // PostgREST sets the roles' timeouts per request (scripts/admin_edit.ts); a bulk edit
  // that took longer would be cancelled on a hosted project, so it must be here too.
  const sql = connectDb();
  try {
    const [settings] = await asAdmin(
      sql,
      ADMIN,
      (tx) =>
        tx`select current_setting('statement_timeout') as statement,
                current_setting('lock_timeout') as lock, current_user as role`,
    );
    assert.deepEqual({ ...settings }, { statement: "8s", lock: "8s", role: "authenticated" });
  } finally {
    await sql.end();
  }
});
