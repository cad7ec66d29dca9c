/**
 * Stream records timed to the second, as on AWS: the stack's DynamoDB proxy gives each
 * record the second its write passed it (local-stack/aws/stream_times.ts), so the ordering
 * guard runs locally with AWS's 1 s `stream_clock_granularity` (docs/sync-semantics.md,
 * "Scan against stream"). Every record of a test's keys carries its own write's second
 * (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems), a write that
 * changes nothing has no record, and a backfill racing live changes within the same
 * seconds ends equal to its source.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  type AttributeValue,
  DeleteItemCommand,
  PutItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { batchWrite, writeBatch } from "../demo/load_dynamo.ts";
import { connectDb, dynamo, eventually, stack, streamRecordsContaining } from "./stack_clients.ts";
import { itemsFor, N, queueBackfill, S, waitForJobs } from "./backfill_fixtures.ts";

const spec = byTargetTable("firespring_segments")!;

/** The proxy's counts of records timed to the second and left at the minute. */
/**
 * The proxy's counts of stream records timed to the second (matched) and left at DynamoDB
 * Local's minute; with `keyPart`, how many unmatched records' keys hold it.
 */
async function streamTimeCounts(
  keyPart?: string,
): Promise<{ matched: number; unmatched: number; unmatchedWithKey?: number }> {
  const query = keyPart === undefined ? "" : `?key=${encodeURIComponent(keyPart)}`;
  const response = await fetch(`${stack.DYNAMODB_ENDPOINT}/_stack/stream-times${query}`);
  return await response.json();
}

Deno.test("every stream record carries the second its write passed the proxy", async () => {
  const client = dynamo(spec.region);
  const p = `times-${crypto.randomUUID().slice(0, 8)}-`;
  const key = (i: number) => ({ segment_id: S(`${p}${i}`) });
  const item = (i: number, name: string) => ({ ...key(i), name: S(name), value: N(i) });
  // Each write with the seconds it may have happened in (it passed the proxy in between).
  const writes: { keys: string[]; from: number; to: number; changes: boolean }[] = [];
  const timed = async (keys: number[], changes: boolean, send: () => Promise<unknown>) => {
    const from = Math.floor(Date.now() / 1000);
    await send();
    writes.push({
      keys: keys.map((i) => `${p}${i}`),
      from,
      to: Math.floor(Date.now() / 1000),
      changes,
    });
    // Spread the writes over several seconds, so that most fall inside a minute.
    await new Promise((resolve) => setTimeout(resolve, 400));
  };
  await timed(
    [0],
    true,
    () => client.send(new PutItemCommand({ TableName: spec.sourceTable, Item: item(0, "a") })),
  );
  await timed(
    [0],
    false,
    () => client.send(new PutItemCommand({ TableName: spec.sourceTable, Item: item(0, "a") })),
  );
  await timed([0], true, () =>
    client.send(
      new UpdateItemCommand({
        TableName: spec.sourceTable,
        Key: key(0),
        UpdateExpression: "SET #n = :n",
        ExpressionAttributeNames: { "#n": "name" },
        ExpressionAttributeValues: { ":n": S("b") },
      }),
    ));
  // Its unprocessed requests, if any, sent again (writeBatch): written in the same window.
  await timed([1, 2], true, () =>
    writeBatch(client, spec.sourceTable, [
      { PutRequest: { Item: item(1, "a") } },
      { PutRequest: { Item: item(2, "a") } },
    ]));
  await timed([1, 2], true, () =>
    client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: spec.sourceTable, Item: item(1, "b") } },
          { Delete: { TableName: spec.sourceTable, Key: key(2) } },
        ],
      }),
    ));
  await timed(
    [3],
    false,
    () => client.send(new DeleteItemCommand({ TableName: spec.sourceTable, Key: key(3) })),
  );
  await timed(
    [0],
    true,
    () => client.send(new DeleteItemCommand({ TableName: spec.sourceTable, Key: key(0) })),
  );
  await timed(
    [0],
    true,
    () => client.send(new PutItemCommand({ TableName: spec.sourceTable, Item: item(0, "a") })),
  );

  const { found } = await streamRecordsContaining(spec.targetTable, p);
  for (const k of [0, 1, 2, 3]) {
    const id = `${p}${k}`;
    const expected = writes.filter((w) => w.changes && w.keys.includes(id));
    const records = found
      .map(({ record }) =>
        record as {
          dynamodb: { Keys: Record<string, AttributeValue>; ApproximateCreationDateTime: number };
        }
      )
      .filter((r) => r.dynamodb.Keys.segment_id.S === id);
    assert.equal(records.length, expected.length, `${id}: one record per write that changed it`);
    records.forEach((record, i) => {
      const at = record.dynamodb.ApproximateCreationDateTime;
      assert.ok(
        at >= expected[i].from && at <= expected[i].to,
        `${id}, record ${i + 1}: ApproximateCreationDateTime ${at} is not the second of its ` +
          `write (${expected[i].from}..${expected[i].to})`,
      );
    });
  }
});

Deno.test("at a 1 s granularity, a backfill racing live changes in the same seconds ends equal", async () => {
  const sql = connectDb();
  const client = dynamo(spec.region);
  const p = `race1s-${crypto.randomUUID().slice(0, 8)}-`;
  try {
    const [granularity] =
      await sql`select value from sync.settings where key = 'stream_clock_granularity'`;
    assert.equal(granularity.value, "1 second");
    const before = await streamTimeCounts();
    await batchWrite(client, spec.sourceTable, itemsFor(spec.targetTable, p, 200));
    const jobId = await queueBackfill(sql, spec.sourceTable, 2, { pageSize: 10 });
    await sql`select sync.wake_import_worker()`;
    // Change keys until the backfill is done: updates, deletes, inserts, re-inserts, each
    // key again and again, so that pages and stream records meet within the same seconds.
    let changes = 0;
    for (let round = 0;; round++) {
      const [progress] =
        await sql`select status from sync.backfill_progress where job_id = ${jobId}`;
      if (progress.status !== "running" && progress.status !== "pending" && round > 0) break;
      for (let i = round % 5; i < 200; i += 23) {
        const id = S(`${p}${i}`);
        if ((round + i) % 3 === 0) {
          await client.send(
            new DeleteItemCommand({ TableName: spec.sourceTable, Key: { segment_id: id } }),
          );
        } else {
          await client.send(
            new PutItemCommand({
              TableName: spec.sourceTable,
              Item: { segment_id: id, name: S(`round ${round}`), value: N(round) },
            }),
          );
        }
        changes++;
      }
      if (round > 400) throw new Error(`backfill job ${jobId} still runs after 400 rounds`);
    }
    const [result] = await waitForJobs(sql, [jobId]);
    assert.equal(result.status, "done");
    assert.ok(changes > 0);

    const source = new Map<string, string>();
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: spec.sourceTable,
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const id = item.segment_id.S!;
        if (id.startsWith(p)) source.set(id, `${item.name.S}:${item.value.N}`);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    const read = async () => {
      const rows = await sql`select segment_id, segment_name || ':' || member_count as v
                             from firespring_segments where segment_id like ${p + "%"}`;
      return new Map(rows.map((r) => [r.segment_id as string, r.v as string]));
    };
    const target = await eventually("the target to equal the source", async () => {
      const rows = await read();
      return isDeepStrictEqual(rows, source) ? rows : undefined;
    }, 60_000).catch(read);
    assert.deepEqual(target, source);
    // Every record of this test's keys carried its write's second. (Counted by key: the
    // poller may meanwhile read records of an earlier test left at the minute on purpose,
    // late on a loaded machine.)
    const after = await streamTimeCounts(p);
    assert.equal(after.unmatchedWithKey, 0, "records left at DynamoDB Local's minute");
    assert.ok(after.matched > before.matched);
  } finally {
    await sql.end();
  }
});
