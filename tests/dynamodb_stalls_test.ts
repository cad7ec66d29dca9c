/**
 * A backfill through DynamoDB requests that hang (`stall_rate`, `stall_ms` of
 * DYNAMODB_FAULTS, local-stack/aws/stalls.ts), as AWS's do now and then: each stalled Scan
 * attempt is given up after the functions' attempt timeout (functions-shared/dynamo_http.ts;
 * `DYNAMODB_ATTEMPT_TIMEOUT_MS`, set to 1 s here, its least, as an operator would set it
 * with `supabase secrets set`, so that a stall of 3 s outlasts it) and retried, the segment's
 * lease held before the retry (functions-shared/segment_page.ts). The job ends done, every
 * item arrives exactly once as a row, each segment is read to its end once (the segments'
 * counts add up to the table's items; no lease taken over, no worker killed), and the
 * validator finds the table matching.
 *
 * Stalls are drawn at random: one small table (traffic sources, which no other file of the
 * second stack writes), 2 segments of pages of 10 items, about 4 Scans at a stall rate of
 * 0.2; a backfill that none of its Scans stalled in is run again (each such run takes
 * seconds) for up to 2 minutes. The faults are on only for the backfills: the items are
 * loaded, and the table validated, under the stack's default faults. (`stack:up` itself
 * describes the tables through the proxy, with the SDK's client, which waits out a stall.)
 *
 * Then the one production write to DynamoDB, an admin's edit written back
 * (functions-shared/write_back_attempt.ts), its UpdateItem stalled after it landed: exactly
 * the next writes of the leads table, asked of the proxy (`POST /__local/dynamodb/stalls`),
 * so that no read stalls and nothing is left to chance. One attempt stalled: the client
 * sends the update again after 1 s, the retry fails its condition, and the item read again
 * holds the edit: applied. Every attempt stalled: the edit is left to retry, and the retry
 * finds the item holding it: applied, not a conflict. Either way written once (`_version`
 * moved on by one), the row showing the edit as the stream brought it back, and no
 * write-back recorded by the merge's write (about 9 s).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DeleteItemCommand, GetItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DYNAMO_MAX_ATTEMPTS } from "../functions-shared/dynamo_client.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { STALLS_PATH } from "../local-stack/aws/stalls.ts";
import { asAdmin as asAdminUser } from "../scripts/admin_edit.ts";
import { FUNCTIONS_ENV_FILE, LOG_DIR } from "../local-stack/config.ts";
import { DENO_PARTS, startDenoPart } from "../local-stack/deno_parts.ts";
import { DEFAULT_DYNAMODB_FAULTS } from "../local-stack/stack_env.ts";
import {
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  killsSince,
  logTextSince,
} from "../local-stack/supabase/isolate_log.ts";
import {
  forget,
  type Item,
  itemsFor,
  queueBackfill,
  scanCount,
  snapshot,
  waitForJobs,
  writeThroughTheStream,
} from "./backfill_fixtures.ts";
import { currentFaults, setFaults } from "./stack_faults.ts";
import { connectDb, dynamo, eventually, stack } from "./stack_clients.ts";
import { load, N, S, validate } from "./validator_fixtures.ts";

const STALLS = `${DEFAULT_DYNAMODB_FAULTS},stall_rate=0.2,stall_ms=3000`;
/** The functions' setting for the test: an attempt waits 1 s. */
const ATTEMPT_TIMEOUT =
  "# tests/dynamodb_stalls_test.ts: 1 s attempts\nDYNAMODB_ATTEMPT_TIMEOUT_MS=1000\n";
const PROXY_LOG = join(LOG_DIR, "dynamodb_proxy.log");
const spec = byTargetTable("firespring_traffic_sources")!;

/** The proxy's log since `offset`. */
function proxyLogSince(offset: number): string {
  return existsSync(PROXY_LOG) ? readFileSync(PROXY_LOG).subarray(offset).toString("utf8") : "";
}

/**
 * Deletes this file's items (of any run: one killed midway left its own) from the table,
 * so that it stays small: every Scan page of a backfill may stall.
 */
async function removeOwnItems(): Promise<void> {
  const client = dynamo(spec.region);
  const key = spec.sourceKey[0].name;
  let start: Item | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: spec.sourceTable,
        ConsistentRead: true,
        FilterExpression: "begins_with(#k, :p)",
        ExpressionAttributeNames: { "#k": key },
        ExpressionAttributeValues: { ":p": { S: "stall-" } },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      await client.send(
        new DeleteItemCommand({ TableName: spec.sourceTable, Key: { [key]: item[key] } }),
      );
    }
    start = page.LastEvaluatedKey;
  } while (start);
}

/**
 * Runs `steps` on a gateway whose functions' attempts wait 1 s ({@link ATTEMPT_TIMEOUT}),
 * then gives the gateway its own settings again.
 */
async function withShortAttempts(steps: () => Promise<void>): Promise<void> {
  const gateway = DENO_PARTS.find((part) => part.name === "functions")!;
  // A developer's own file is never replaced.
  if (
    existsSync(FUNCTIONS_ENV_FILE) &&
    !readFileSync(FUNCTIONS_ENV_FILE, "utf8").startsWith(ATTEMPT_TIMEOUT.split("\n")[0])
  ) {
    throw new Error(`${FUNCTIONS_ENV_FILE} exists: move it away to run this test`);
  }
  let written = false;
  try {
    writeFileSync(FUNCTIONS_ENV_FILE, ATTEMPT_TIMEOUT);
    written = true;
    await startDenoPart(gateway, stack, true);
    await steps();
  } finally {
    if (written) {
      rmSync(FUNCTIONS_ENV_FILE, { force: true });
      await startDenoPart(gateway, stack, true);
    }
  }
}

Deno.test("DynamoDB requests that stall past the functions' 1 s attempts", async (t) => {
  await withShortAttempts(async () => {
    await t.step(
      "a backfill whose Scans stall past the client's timeout retries them and reads every item once",
      backfillThroughStalls,
    );
    await t.step(
      "a write-back whose UpdateItem stalls after it landed ends applied, written once",
      writeBackThroughStalls,
    );
  });
});

async function backfillThroughStalls() {
  const previous = currentFaults();
  const sql = connectDb();
  const p = `stall-${crypto.randomUUID().slice(0, 8)}-`;
  const n = 30;
  try {
    await setFaults(DEFAULT_DYNAMODB_FAULTS);
    await removeOwnItems();
    await writeThroughTheStream(sql, spec.targetTable, p, itemsFor(spec.targetTable, p, n));
    const reference = (await snapshot(sql, p))[spec.targetTable];
    await forget(sql, p, [spec.targetTable]);
    const total = await scanCount(spec.targetTable);

    await setFaults(STALLS);
    const proxyOffset = existsSync(PROXY_LOG) ? statSync(PROXY_LOG).size : 0;
    const isolateOffset = isolateLogOffset();
    const stalledScan = new RegExp(
      `Scan ${spec.sourceTable} segment \\d/2: stalled 3000 ms before it is forwarded`,
      "g",
    );
    let stalls = 0;
    const until = Date.now() + 120_000;
    for (let run = 1; stalls === 0; run++) {
      assert.ok(Date.now() < until, `no Scan of ${run - 1} backfills stalled in 2 minutes`);
      const jobId = await queueBackfill(sql, spec.sourceTable, 2, { pageSize: 10 });
      await sql`select sync.wake_import_worker()`;
      const [job] = await waitForJobs(sql, [jobId], 300_000);
      assert.equal(job.status, "done", JSON.stringify(job));
      const segments = await sql`select segment, status, items_scanned::int as items, pages
                                 from sync.backfill_segments where job_id = ${jobId}
                                 order by segment`;
      assert.deepEqual(segments.map((s) => s.status), ["done", "done"]);
      assert.equal(
        segments.reduce((sum, s) => sum + s.items, 0),
        total,
        `each segment read to its end once: ${JSON.stringify(segments)}`,
      );
      assert.equal(Number(job.items_scanned), total);
      stalls = proxyLogSince(proxyOffset).match(stalledScan)?.length ?? 0;
    }
    const workerLog = logTextSince(isolateOffset);
    assert.doesNotMatch(workerLog, /its lease was taken over/);
    assert.deepEqual(killsSince(isolateOffset, HANDS_ON_FUNCTIONS), []);

    await setFaults(DEFAULT_DYNAMODB_FAULTS);
    assert.deepEqual((await snapshot(sql, p))[spec.targetTable], reference);
    const [rows] = await sql.unsafe(
      `select count(*)::int as n from public.${spec.targetTable} where ${
        spec.targetKey[0]
      } like $1`,
      [`${p}%`],
    );
    assert.equal(rows.n, n, "every item exactly once as a row");
    assert.equal((await validate(spec.targetTable)).match, true);
  } finally {
    await sql.end();
    await setFaults(previous);
    await removeOwnItems();
  }
}

const leads = byTargetTable("mmp_toledo_leads")!;
/** An admin of the write-back step. */
const ADMIN = { sub: "00000000-0000-0000-0000-00000000ad57", email: "stall-admin@example.test" };

/**
 * Has the proxy hold the answers of the next `writes` writes of the leads table `stallMs`
 * each, after they landed (local-stack/aws/stalls.ts, STALLS_PATH).
 */
async function stallLeadWrites(writes: number, stallMs: number): Promise<void> {
  const response = await fetch(`${stack.DYNAMODB_ENDPOINT}${STALLS_PATH}`, {
    method: "POST",
    body: JSON.stringify({ tableName: leads.sourceTable, writes, stallMs }),
  });
  assert.equal(response.status, 200, await response.text());
  await response.arrayBuffer().catch(() => {});
}

/** The stalls asked for and not yet taken, by table. */
async function stallsLeft(): Promise<Record<string, unknown>> {
  return await (await fetch(`${stack.DYNAMODB_ENDPOINT}${STALLS_PATH}`)).json();
}

/** The write-backs of lead `id`, oldest first. */
async function writeBacksOf(sql: postgres.Sql, id: string) {
  return await sql`select id, status, detail, attempts from sync.write_backs
                   where target_table = 'mmp_toledo_leads' and row_key ->> 'lead_id' = ${id}
                   order by id`;
}

/** Lead `id` as DynamoDB holds it. */
async function leadItem(id: string) {
  const { Item } = await dynamo(leads.region).send(
    new GetItemCommand({
      TableName: leads.sourceTable,
      Key: { id: { S: id } },
      ConsistentRead: true,
    }),
  );
  return Item;
}

/**
 * Waits for lead `id`'s row to show `status` and `version` (its `_version`, in
 * `lead_data`) as the stream brought them.
 */
async function streamedBack(sql: postgres.Sql, id: string, status: string, version: string) {
  return await eventually(`the stream to bring lead ${id}'s edit back`, async () => {
    const [row] = await sql`select status, sync_source, lead_data ->> '_version' as version
                            from public.mmp_toledo_leads where lead_id = ${id}`;
    return row?.sync_source === "stream" && row.status === status && row.version === version
      ? row
      : undefined;
  });
}

/**
 * A write-back's UpdateItem whose answer is held after it landed (an AppSync table's lead,
 * so that the update moves `_version` on): (1) one attempt stalled: the client gives it up
 * after 1 s and sends it again; the retry fails its condition (the first moved `_version`
 * and the status), the item read again holds the edit: applied, by this attempt.
 * (2) Every attempt stalled (DYNAMO_MAX_ATTEMPTS): the UpdateItem throws a TimeoutError,
 * the edit is left to retry (pending, the cause named); the next attempt reads the item
 * first, finds the edit, and ends it applied without writing. Either way the item holds
 * the edit once (`_version` moved on by one), the row shows it as the stream brought it
 * back, and the merge's write records no write-back of its own.
 */
async function writeBackThroughStalls() {
  const sql = connectDb();
  const p = `wbstall-${crypto.randomUUID().slice(0, 8)}-`;
  const [once, always] = [`${p}1`, `${p}2`];
  try {
    await setFaults(DEFAULT_DYNAMODB_FAULTS);
    await load("mmp_toledo_leads", [
      { id: S(once), name: S("lead once"), status: S("new"), _version: N(1) },
      { id: S(always), name: S("lead always"), status: S("new"), _version: N(1) },
    ], p);
    const proxyOffset = existsSync(PROXY_LOG) ? statSync(PROXY_LOG).size : 0;
    // Any answer: the stand-in's error_rate may have made one a 500 after the write.
    const held = new RegExp(
      `UpdateItem ${leads.sourceTable}: forwarded, its answer \\(\\d+\\) held 1500 ms`,
      "g",
    );
    const gone = `UpdateItem ${leads.sourceTable}: its client went away while its answer was ` +
      "held; the write stands";

    // (1) The first attempt stalls; the client's own retry finds the edit written.
    await stallLeadWrites(1, 1500);
    await asAdminUser(
      sql,
      ADMIN,
      (tx) => tx`update public.mmp_toledo_leads set status = 'contacted' where lead_id = ${once}`,
    );
    const [first] = await eventually("the stalled write-back to end", async () => {
      const rows = await writeBacksOf(sql, once);
      return rows.length > 0 && rows.every((r) => r.status !== "pending") ? rows : undefined;
    });
    assert.equal(first.status, "applied", first.detail);
    assert.match(first.detail, new RegExp(`: written to ${leads.sourceTable}$`));
    assert.equal(first.attempts, 1, "the client's retry, within the one attempt");
    assert.deepEqual(await stallsLeft(), {}, "the stall was taken");
    const item = await leadItem(once);
    assert.deepEqual(item?.status, S("contacted"));
    assert.deepEqual(item?._version, N(2), "written once: _version moved on by one");
    await streamedBack(sql, once, "contacted", "2");
    assert.equal((await writeBacksOf(sql, once)).length, 1, "the merge's write recorded nothing");
    const log = proxyLogSince(proxyOffset);
    assert.equal(log.match(held)?.length, 1, `the answer held:\n${log}`);
    assert.ok(log.includes(gone), `the client gave it up:\n${log}`);

    // (2) Every attempt of the UpdateItem stalls: the edit is left to retry.
    await stallLeadWrites(DYNAMO_MAX_ATTEMPTS, 1500);
    await asAdminUser(
      sql,
      ADMIN,
      (tx) => tx`update public.mmp_toledo_leads set status = 'won' where lead_id = ${always}`,
    );
    const left = await eventually("the write-back's first attempt to end", async () => {
      const [row] = await writeBacksOf(sql, always);
      return row?.detail ? row : undefined;
    }, 60_000);
    assert.equal(left.status, "pending", left.detail);
    assert.match(
      left.detail,
      new RegExp(
        `^mmp_toledo_leads \\[lead_id="${always}"\\]: TimeoutError: UpdateItem on ` +
          `${leads.sourceTable}: no answer from .* within 1000 ms`,
      ),
    );
    assert.deepEqual(await stallsLeft(), {}, "each attempt stalled");
    // Its retry due now rather than after the backoff, and the function woken for it.
    await sql`update sync.write_backs set next_attempt_at = now() where id = ${left.id}`;
    await sql`select sync.wake_write_back()`;
    const [second] = await eventually("the retried write-back to end", async () => {
      const [row] = await writeBacksOf(sql, always);
      return row?.status !== "pending" ? [row] : undefined;
    });
    assert.equal(second.status, "applied", second.detail);
    assert.match(second.detail, /: the item already holds the edit$/);
    assert.equal(second.attempts, 2);
    const retried = await leadItem(always);
    assert.deepEqual(retried?.status, S("won"));
    assert.deepEqual(retried?._version, N(2), "written once: the retries failed their condition");
    await streamedBack(sql, always, "won", "2");
    assert.equal((await writeBacksOf(sql, always)).length, 1, "the merge's write recorded nothing");
    assert.equal(
      proxyLogSince(proxyOffset).match(held)?.length,
      1 + DYNAMO_MAX_ATTEMPTS,
      "each attempt's answer held",
    );
  } finally {
    await sql.end();
    await stallLeadWrites(0, 1).catch(() => {});
    for (const id of [once, always]) {
      await dynamo(leads.region).send(
        new DeleteItemCommand({ TableName: leads.sourceTable, Key: { id: { S: id } } }),
      ).catch(() => {});
    }
  }
}
