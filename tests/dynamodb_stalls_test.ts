/**
 * A backfill through DynamoDB requests that hang (`stall_rate`, `stall_ms` of
 * DYNAMODB_FAULTS, local-stack/aws/stalls.ts), as AWS's do now and then: each stalled Scan
 * attempt is given up after the functions' attempt timeout (functions-shared/dynamo_http.ts;
 * `DYNAMODB_ATTEMPT_TIMEOUT_MS`, set to 2 s here, as an operator would set it with
 * `supabase secrets set`, so that a stall of 3 s outlasts it) and retried, the segment's
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
 * @module
 */

import assert from "node:assert/strict";
import { DeleteItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { byTargetTable } from "../functions-shared/table_registry.ts";
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
import { connectDb, dynamo, stack } from "./stack_clients.ts";
import { validate } from "./validator_fixtures.ts";

const STALLS = `${DEFAULT_DYNAMODB_FAULTS},stall_rate=0.2,stall_ms=3000`;
/** The functions' setting for the test: an attempt waits 2 s. */
const ATTEMPT_TIMEOUT =
  "# tests/dynamodb_stalls_test.ts: 2 s attempts\nDYNAMODB_ATTEMPT_TIMEOUT_MS=2000\n";
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

Deno.test("a backfill whose Scans stall past the client's timeout retries them and reads every item once", async () => {
  const previous = currentFaults();
  const sql = connectDb();
  const p = `stall-${crypto.randomUUID().slice(0, 8)}-`;
  const n = 30;
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
    if (written) {
      rmSync(FUNCTIONS_ENV_FILE, { force: true });
      await startDenoPart(gateway, stack, true);
    }
  }
});
