/**
 * Write-back end to end (issue 18; docs/interfaces.md, "write-back"): an admin's update
 * (as `authenticated` with the admin claim, as the Data API runs it) is recorded by the
 * trigger, delivered by pg_net to the `write-back` function, written to DynamoDB Local
 * through the stack's DynamoDB proxy, and streams back through the one merge; the
 * validator then finds the table equal to its source. A change made in DynamoDB first
 * ends as a recorded conflict with the row equal to the source; an item gone is a
 * conflict at once, its row removed; under DynamoDB faults (error_rate 0.2, and the
 * table's write capacity one unit a second, `throttle_wcu=1`) every edit still lands.
 * Runs alone (scripts/e2e_plan.ts): it validates toledo_dashboard whole and restarts the
 * DynamoDB proxy with other faults.
 */

import assert from "node:assert/strict";
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { logFile } from "../local-stack/processes.ts";
import { isolateLogOffset, logTextSince } from "../local-stack/supabase/isolate_log.ts";
import { asAdmin as asAdminUser } from "../scripts/admin_edit.ts";
import { currentFaults, setFaults } from "./stack_faults.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { load, N, S, validate } from "./validator_fixtures.ts";

const spec = byTargetTable("toledo_dashboard")!;
const TABLE = spec.sourceTable;

/** Runs `statement` as an `authenticated` admin, as PostgREST runs a request. */
function asAdmin(sql: postgres.Sql, statement: (tx: postgres.TransactionSql) => unknown) {
  return asAdminUser(
    sql,
    { sub: "00000000-0000-0000-0000-00000000ad01", email: "ops-admin@example.test" },
    async (tx) => await statement(tx),
  );
}

/** The write-backs of a key, oldest first. */
async function writeBacksOf(sql: postgres.Sql, pk: string) {
  return await sql`select id, status, detail, attempts, edited_by, columns, source_values
                   from sync.write_backs
                   where target_table = 'toledo_dashboard' and row_key ->> 'pk' = ${pk}
                   order by id`;
}

async function waitEnded(sql: postgres.Sql, pk: string, timeoutMs = 90_000) {
  return await eventually(`the write-back of ${pk} to end`, async () => {
    const rows = await writeBacksOf(sql, pk);
    return rows.length > 0 && rows.every((r) => r.status !== "pending") ? rows : undefined;
  }, timeoutMs);
}

async function sourceItem(pk: string, sk = "a") {
  const { Item } = await dynamo(spec.region).send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: S(pk), sk: S(sk) }, ConsistentRead: true }),
  );
  return Item;
}

/** Holds the merge's lock of toledo_dashboard while `during` runs: the stream waits. */
async function withMergeHeld(sql: postgres.Sql, during: () => Promise<void>) {
  const held = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const tx = sql.begin(async (t) => {
    await t`select pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext('toledo_dashboard'))`;
    held.resolve();
    await release.promise;
  });
  await held.promise;
  try {
    await during();
  } finally {
    release.resolve();
    await tx;
  }
}

Deno.test("an admin's edit reaches DynamoDB, streams back, and the validator matches", async () => {
  const p = `wb-${crypto.randomUUID().slice(0, 8)}`;
  const sql = connectDb();
  try {
    await load("toledo_dashboard", [{
      pk: S(p),
      sk: S("a"),
      metrics: { M: { visits: N("12345678901234567890123"), tags: { SS: ["x"] } } },
      updated_at: S("2026-11-28T10:00:00Z"),
    }], p);
    const [before] = await sql`select sync_sequence::text as seq from public.toledo_dashboard
                               where pk = ${p}`;
    await asAdmin(sql, (tx) =>
      tx`update public.toledo_dashboard
         set metrics = '{"visits": 98765432109876543210987654321, "tags": ["x", "y"]}',
             updated_at = '2026-11-28T11:30:00.25Z'
         where pk = ${p}`);
    const [done] = await waitEnded(sql, p);
    assert.equal(done.status, "applied", done.detail);
    assert.equal(done.edited_by, "ops-admin@example.test");
    assert.deepEqual(done.columns, ["metrics", "updated_at"]);
    const item = await sourceItem(p);
    assert.deepEqual(item?.metrics, {
      M: { visits: { N: "98765432109876543210987654321" }, tags: { SS: ["x", "y"] } },
    }, "every digit, and the set stays a set");
    assert.deepEqual(item?.updated_at, { S: "2026-11-28T11:30:00.25Z" }, "the source's form");
    const row = await eventually("the stream to bring the change back", async () => {
      const [r] = await sql`select sync_source, sync_sequence::text as seq, metrics::text as m
                            from public.toledo_dashboard where pk = ${p}`;
      return r?.sync_source === "stream" && BigInt(r.seq) > BigInt(before.seq) ? r : undefined;
    });
    assert.equal(row.m, '{"tags": ["x", "y"], "visits": 98765432109876543210987654321}');
    const result = await validate("toledo_dashboard");
    assert.equal(result.match, true, JSON.stringify(result));
    assert.equal((await writeBacksOf(sql, p)).length, 1, "the merge's write recorded nothing");
  } finally {
    await sql.end();
  }
});

Deno.test("a change made in DynamoDB first: a recorded conflict, the row equal to the source", async () => {
  const p = `wbc-${crypto.randomUUID().slice(0, 8)}`;
  const sql = connectDb();
  try {
    await load("toledo_dashboard", [{ pk: S(p), sk: S("a"), metrics: { M: { v: N(1) } } }], p);
    await withMergeHeld(sql, async () => {
      await dynamo(spec.region).send(
        new PutItemCommand({
          TableName: TABLE,
          Item: { pk: S(p), sk: S("a"), metrics: { M: { v: N(2) } } },
        }),
      );
      await asAdmin(
        sql,
        (tx) => tx`update public.toledo_dashboard set metrics = '{"v": 3}' where pk = ${p}`,
      );
    });
    const [done] = await waitEnded(sql, p);
    assert.equal(done.status, "conflict", done.detail);
    assert.match(
      done.detail,
      new RegExp(`^toledo_dashboard \\[pk="${p}", sk="a"\\]: the item changed`),
    );
    assert.deepEqual(done.source_values, { metrics: { v: 2 } }, "the source's values");
    assert.deepEqual((await sourceItem(p))?.metrics, { M: { v: { N: "2" } } }, "not applied");
    await eventually("the row to show the source", async () => {
      const [r] = await sql`select metrics from public.toledo_dashboard where pk = ${p}`;
      return r?.metrics?.v === 2 ? true : undefined;
    });
  } finally {
    await sql.end();
  }
});

Deno.test("an item gone is a conflict at once, and its row is removed as the source has none", async () => {
  // A consistent read that finds no item is final: retrying it held every later edit of
  // the row behind this one for the attempts' ten minutes.
  const p = `wbg-${crypto.randomUUID().slice(0, 8)}`;
  const sql = connectDb();
  try {
    await load("toledo_dashboard", [{ pk: S(p), sk: S("a"), metrics: { M: {} } }], p);
    await withMergeHeld(sql, async () => {
      await dynamo(spec.region).send(
        new DeleteItemCommand({ TableName: TABLE, Key: { pk: S(p), sk: S("a") } }),
      );
      await asAdmin(
        sql,
        (tx) => tx`update public.toledo_dashboard set metrics = '{"v": 3}' where pk = ${p}`,
      );
    });
    const [done] = await waitEnded(sql, p);
    assert.equal(done.status, "conflict", done.detail);
    assert.equal(done.attempts, 1);
    assert.match(
      done.detail,
      new RegExp(
        `^toledo_dashboard \\[pk="${p}", sk="a"\\]: the item is gone from ${TABLE} \\(deleted in DynamoDB since the row was built\\); the edit was not applied`,
      ),
    );
    await eventually("the row to be gone, as the source", async () => {
      const rows = await sql`select 1 from public.toledo_dashboard where pk = ${p}`;
      return rows.length === 0 ? true : undefined;
    });
  } finally {
    await sql.end();
  }
});

Deno.test("under DynamoDB faults (a fifth of the requests fail, writes throttled) every write-back is retried and lands", async () => {
  const p = `wbf-${crypto.randomUUID().slice(0, 8)}`;
  const sql = connectDb();
  const keys = ["a", "b", "c", "d", "e"];
  const old = currentFaults();
  const proxyLog = logFile("dynamodb_proxy");
  const offset = isolateLogOffset(proxyLog);
  try {
    await load(
      "toledo_dashboard",
      keys.map((sk) => ({ pk: S(`${p}-${sk}`), sk: S(sk), metrics: { M: { v: N(1) } } })),
      p,
    );
    // One write unit a second: five edits written at once meet
    // ProvisionedThroughputExceededException (local-stack/aws/write_capacity.ts).
    await setFaults("stale_ms=2000,throttle_rcu=300,throttle_wcu=1,error_rate=0.2");
    await asAdmin(
      sql,
      (tx) =>
        tx`update public.toledo_dashboard set metrics = jsonb_build_object('v', 2, 'sk', sk)
         where pk like ${p + "-%"}`,
    );
    for (const sk of keys) {
      const [done] = await waitEnded(sql, `${p}-${sk}`, 240_000);
      assert.equal(done.status, "applied", done.detail);
    }
    assert.match(
      logTextSince(offset, proxyLog),
      new RegExp(`UpdateItem ${TABLE}: write capacity spent, throttled`),
      "no write-back met the throttle",
    );
  } finally {
    await setFaults(old);
  }
  try {
    for (const sk of keys) {
      assert.deepEqual((await sourceItem(`${p}-${sk}`, sk))?.metrics, {
        M: { v: { N: "2" }, sk: { S: sk } },
      });
    }
    await eventually("the stream to bring every change back", async () => {
      const [r] = await sql`select count(*)::int as n from public.toledo_dashboard
                            where pk like ${p + "-%"} and sync_source = 'stream'
                              and metrics ->> 'v' = '2'`;
      return r.n === keys.length ? true : undefined;
    });
  } finally {
    await sql.end();
  }
});

Deno.test("the switch to cutover waits for a merge in flight; a merge that waited for its lock meanwhile is refused", async () => {
  // Runs alone on its stack (scripts/e2e_plan.ts): nothing else merges while it is cut over.
  const [merger, switcher, watcher] = [connectDb(), connectDb(), connectDb()];
  /** Polls until one statement other than the watcher's waits on a lock. */
  const lockWaited = (what: string) =>
    eventually(what, async () => {
      const [{ n }] = await watcher`select count(*)::int as n from pg_stat_activity
        where wait_event_type = 'Lock' and pid <> pg_backend_pid()
          and (query like '%enter_merge%' or query like '%update sync.settings%')`;
      return n === 1 ? true : undefined;
    });
  const [{ value: before }] =
    await watcher`select value from sync.settings where key = 'write_back'`;
  try {
    // A merge holds its table's lock (it passed its check): the switch waits for it.
    let switched: Promise<unknown> | undefined;
    await merger.begin(async (m) => {
      await m`select sync.enter_merge('toledo_dashboard')`;
      switched = switcher`update sync.settings set value = 'cutover' where key = 'write_back'`
        .execute();
      await lockWaited("the switch to wait for the merge in flight");
    });
    await switched;
    await watcher`update sync.settings set value = ${before} where key = 'write_back'`;
    // The switch holds every table's lock (not committed yet): a merge waits for it, and
    // once it commits reads the switch, and is refused.
    let merged: Promise<unknown> | undefined;
    await switcher.begin(async (s) => {
      await s`update sync.settings set value = 'cutover' where key = 'write_back'`;
      merged = merger`select sync.enter_merge('toledo_dashboard')`.execute();
      merged.catch(() => {});
      await lockWaited("the merge to wait for the switch");
    });
    await assert.rejects(merged!, (error: Error & { code?: string }) => {
      assert.equal(error.code, "SY005", error.message);
      return true;
    });
  } finally {
    await watcher`update sync.settings set value = ${before} where key = 'write_back'`;
    await Promise.all([merger.end(), switcher.end(), watcher.end()]);
  }
});
