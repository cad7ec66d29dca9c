/**
 * The lost-record check (`stream-check`; docs/sync-semantics.md, "Lost stream records")
 * against the stack's emulated stream: records the webhook applied leave the table as it
 * is; records the stream trimmed before the webhook applied them (the poller, Lambda's
 * event source mapping here, was away) mark the table stale with a reason naming the
 * table, the shard and the sequence number, and the queued backfill heals the table. A
 * replaced stream is not followed by the mapping (the poller, as Lambda's), is reported,
 * and is delivered once the mapping is made again. A closed shard the stream deletes with
 * records never applied is reported as lost, and healed. A stream longer than a run's CPU
 * allowance is read to its end by runs that hand on, through the gateway.
 */

import assert from "node:assert/strict";
import {
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  PutItemCommand,
  UpdateTableCommand,
} from "@aws-sdk/client-dynamodb";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { batchWrite, writeBatch } from "../demo/load_dynamo.ts";
import { DYNAMODB_INTERNAL_PORT, FUNCTIONS_ENV_FILE, HOST } from "../local-stack/config.ts";
import { awsClientConfig } from "../functions-shared/dynamo_client.ts";
import { stackEnvReader } from "../local-stack/stack_env.ts";
import { localSequenceNumber } from "../local-stack/aws/sequence_numbers.ts";
import { logFile, stopDetached } from "../local-stack/processes.ts";
import { DENO_PARTS, startDenoPart } from "../local-stack/deno_parts.ts";
import { isolateLogOffset, killsSince, logTextSince } from "../local-stack/supabase/isolate_log.ts";
import { listShards, readShard } from "../local-stack/aws/stream_reader.ts";
import {
  callFunction,
  closeStreamShards,
  connectDb,
  dynamo,
  dynamoStreams,
  eventually,
  gapStream,
  serviceRoleHeaders,
  stack,
  trimStream,
} from "./stack_clients.ts";
import { startStreamPoller } from "./stream_poller.ts";
import { streamAppliedSince } from "../functions-shared/stream_check_db.ts";
import { MAX_CHECK_INTERVAL_MS } from "../functions-shared/stream_timing.ts";

const SOURCE = "firespring-backdoor-segments-dev";
const TARGET = "firespring_segments";

interface Report {
  table: string;
  problem?: string;
  backfillJobId?: number;
  error?: string;
}

type Dynamo = ReturnType<typeof dynamo>;
const putSegment = (db: Dynamo, id: string) =>
  db.send(new PutItemCommand({ TableName: SOURCE, Item: { segment_id: { S: id } } }));
async function deleteSegments(db: Dynamo, ids: string[]): Promise<void> {
  for (const id of ids) {
    await db.send(new DeleteItemCommand({ TableName: SOURCE, Key: { segment_id: { S: id } } }));
  }
}
/**
 * Deletes many segments, 25 a request (DeleteItem one by one takes a second each here),
 * each request until every delete is written (its unprocessed ones sent again).
 */
async function batchDelete(db: Dynamo, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 25) {
    const requests = ids.slice(i, i + 25).map((id) => ({
      DeleteRequest: { Key: { segment_id: { S: id } } },
    }));
    await writeBatch(db, SOURCE, requests);
  }
}

/** Turns the table's stream on (a new stream, when it was off). */
async function streamOn(db: Dynamo): Promise<void> {
  await db.send(
    new UpdateTableCommand({
      TableName: SOURCE,
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
}

/**
 * Waits until no run of the check holds the table's lease: the hourly run (pg_cron, at
 * minute 41), or a run of a chain an earlier test began (its runs go on after the request
 * that began them is answered; one the gateway's restart killed holds it until it expires).
 */
async function letGo(): Promise<void> {
  const sql = connectDb();
  try {
    await eventually("the table's lease to be let go", async () => {
      const [held] = await sql`select 1 from sync.stream_check_leases
                               where target_table = ${TARGET} and held_until > now()`;
      return held ? undefined : true;
    }, 180_000);
  } finally {
    await sql.end();
  }
}

/** The answer of a check of the segments table, once no other run is reading it. */
async function checkAnswer(): Promise<
  { checked: (Report & { unfinishedShards?: number })[]; left: string[]; handedOn?: boolean }
> {
  for (;;) {
    const response = await callFunction("stream-check", {
      method: "POST",
      headers: serviceRoleHeaders(),
      body: JSON.stringify({ tables: [TARGET] }),
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    if (!body.busy?.includes(TARGET)) return body;
    await letGo();
  }
}

/** Waits for the healing backfill `jobId`, queued at or after `since`, to end done. */
async function healingBackfillDone(
  sql: ReturnType<typeof connectDb>,
  jobId: number,
  since: Date,
): Promise<void> {
  await eventually("the healing backfill", async () => {
    const [job] = await sql`select status from sync.backfill_jobs
                            where id = ${jobId} and requested_at >= ${since}`;
    return job?.status === "done" ? job : undefined;
  }, 120_000);
}

/** Waits for segment `id`'s row: its record applied through the stream. */
async function appliedRow(sql: ReturnType<typeof connectDb>, id: string): Promise<void> {
  await eventually("the record to be applied", async () => {
    const [row] = await sql`select 1 from public.firespring_segments where segment_id = ${id}`;
    return row;
  }, 60_000);
}

async function check(): Promise<Report> {
  const [report] = (await checkAnswer()).checked;
  assert.equal(report.error, undefined, report.error);
  return report;
}

Deno.test("a key's changes across a step in the width of the sequence numbers are applied in order, and the check reads past it", async () => {
  // AWS's sequence numbers are 21 to 40 digits; the stack's grow a digit at each power of
  // 4 of DynamoDB Local's counter (local-stack/aws/sequence_numbers.ts), where text order
  // and numeric order disagree. DynamoDB Local's counter is moved on to just before the
  // next step by a scratch table's writes, then one segment is changed across it. First
  // in the file: the fewest writes to the next step, and no chain of an earlier test's
  // check holding the table (the gaps' test's ran on for two minutes).
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const id = `stream-check-width-${crypto.randomUUID()}`;
  const scratch = `width-scratch-${crypto.randomUUID().slice(0, 8)}`;
  const counter = counterDynamo();
  const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
  const streamArn = Table!.LatestStreamArn!;
  const name = (n: number) =>
    db.send(
      new PutItemCommand({
        TableName: SOURCE,
        Item: { segment_id: { S: id }, name: { S: `v${n}` } },
      }),
    );
  try {
    await sql`delete from sync.stream_checks where target_table = ${TARGET}`;
    await name(0);
    const [first] = await segmentRecords(streamArn, id);
    const n = BigInt(localSequenceNumber(first)!);
    let step = 4n;
    while (step <= n + 8n) step *= 4n;
    const writes = Number(step - n - 4n);
    assert.ok(
      writes <= 100_000,
      `DynamoDB Local's counter (${n}) is ${writes} writes short of its next step (${step}): ` +
        "too many for this test; a fresh stack (stack:down, stack:up) starts it again",
    );
    await counter.send(
      new CreateTableCommand({
        TableName: scratch,
        KeySchema: [{ AttributeName: "k", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
        StreamSpecification: { StreamEnabled: true, StreamViewType: "KEYS_ONLY" },
      }),
    );
    const items = Array.from({ length: writes }, (_, i) => ({ k: { S: String(i) } }));
    await batchWrite(counter, scratch, items);
    for (let v = 1; v <= 8; v++) await name(v);
    const seqs = await segmentRecords(streamArn, id);
    assert.equal(seqs.length, 9);
    const widths = new Set(seqs.map((s) => s.length));
    assert.ok(widths.size > 1, `the changes straddle a step of width: ${seqs.join(", ")}`);
    const numeric = [...seqs].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    assert.deepEqual(seqs, numeric, "the stream gives them in numeric order");
    assert.notDeepEqual([...seqs].sort(), numeric, "which text order is not");

    // Applied in order: the row is the last change, stamped with its sequence number (as
    // Postgres' numeric gives it back: AWS's numbers have no leading zero).
    await eventually("the last change to be applied", async () => {
      const [row] = await sql`select segment_name, sync_sequence::text as seq
                              from public.firespring_segments where segment_id = ${id}`;
      return row?.segment_name === "v8" ? row : undefined;
    }, 60_000);
    const [row] = await sql`select sync_sequence::text as seq from public.firespring_segments
                            where segment_id = ${id}`;
    assert.equal(row.seq, seqs.at(-1));

    // The check reads past the step: nothing lost, applied through the last change.
    const report = await check();
    assert.equal(report.problem, undefined);
    const [{ shards }] = await sql`select shards from sync.stream_checks
                                   where target_table = ${TARGET}`;
    const states = Object.values(
      shards as Record<string, { through?: string; frontier?: unknown }>,
    );
    assert.ok(states.every((s) => !s.frontier), JSON.stringify(shards));
    assert.ok(
      states.some((s) => s.through && BigInt(s.through) >= BigInt(seqs.at(-1)!)),
      `applied through ${seqs.at(-1)}: ${JSON.stringify(shards)}`,
    );
  } finally {
    await counter.send(new DeleteTableCommand({ TableName: scratch })).catch(() => {});
    await deleteSegments(db, [id]);
    await sql.end();
  }
});

Deno.test("the lost-record check: applied records pass; trimmed unapplied ones mark the table stale and heal it", async () => {
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const marker = `stream-check-${crypto.randomUUID()}`;
  const ids = ["applied", "lost-1", "lost-2"].map((n) => `${marker}-${n}`);
  const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
  const streamArn = Table!.LatestStreamArn!;
  const put = (id: string) => putSegment(db, id);
  try {
    // A first run on the table takes the stream as it finds it.
    await sql`delete from sync.stream_checks where target_table = ${TARGET}`;

    // Applied normally: the webhook noted the record, and the check finds nothing.
    await put(ids[0]);
    await appliedRow(sql, ids[0]);
    const fine = await check();
    assert.equal(fine.problem, undefined);
    assert.equal(fine.backfillJobId, undefined);
    const [state] =
      await sql`select problem from sync.stream_checks where target_table = ${TARGET}`;
    assert.equal(state.problem, null);
    const [status] = await sql`select stream_checked_at, stream_check_overdue from sync.status
                               where target_table = ${TARGET}`;
    assert.ok(status.stream_checked_at, "sync.status shows when the check last checked it");
    assert.equal(status.stream_check_overdue, false);

    // The mapping stops; two records arrive that it does not deliver.
    await stopDetached("stream_poller");
    await put(ids[1]);
    await put(ids[2]);
    const second = await check();
    assert.equal(second.problem, undefined, "records not yet applied are no loss while held");
    const [{ shards }] = await sql`select shards from sync.stream_checks
                                   where target_table = ${TARGET}`;
    const [shardId, shard] = Object.entries(
      shards as Record<string, { frontier?: { seq: string } }>,
    )
      .find(([, s]) => s.frontier)!;
    const frontier = shard.frontier!.seq;

    // The stream trims them before the mapping comes back.
    const streams = dynamoStreams("us-east-1");
    const records = [];
    for (const s of await listShards(streams, streamArn)) {
      records.push(...await readShard(streams, streamArn, s.ShardId!));
    }
    const ours = records.filter((r) => ids.some((id) => JSON.stringify(r).includes(id)));
    // The newest of them (the shards are listed in no chronological order).
    const lastSeq = ours.map((r) => r.dynamodb!.SequenceNumber!)
      .reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b));
    assert.ok(BigInt(frontier) <= BigInt(lastSeq), "the frontier is one of them, or before");
    await trimStream(streamArn, lastSeq);

    const since = new Date();
    const lost = await check();
    assert.ok(lost.problem, "the check reports the loss");
    assert.match(
      lost.problem!,
      new RegExp(
        `^${TARGET}: lost-record check of ${streamArn.replace(/[.]/g, "\\.")}: shard ${shardId}: ` +
          `record ${frontier} \\(created [^)]+\\) was trimmed from the stream before the ` +
          `webhook applied it`,
      ),
    );
    assert.ok(lost.backfillJobId, "a healing backfill is queued");
    const [stale] = await sql`select stale, stale_reason from sync.status
                              where target_table = ${TARGET}`;
    assert.equal(stale.stale, true);
    assert.equal(stale.stale_reason, lost.problem);

    // The backfill heals what the stream lost, and clears the mark.
    await healingBackfillDone(sql, lost.backfillJobId!, since);
    const healed = await sql`select segment_id from public.firespring_segments
                             where segment_id in ${sql(ids)} order by segment_id`;
    assert.deepEqual(healed.map((r) => r.segment_id), [...ids].sort());
    const [after] = await sql`select stale from sync.status where target_table = ${TARGET}`;
    assert.equal(after.stale, false);
  } finally {
    await trimStream(streamArn, null);
    // The poller runs again whatever happened, or every later stream test would wait.
    await startStreamPoller();
    await deleteSegments(db, ids);
    await sql.end();
  }
});

Deno.test("a replaced stream: the mapping stays on the old one until made again; the check reports it and heals the table", async () => {
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const marker = `replaced-${crypto.randomUUID()}`;
  const ids = [`${marker}-before`, `${marker}-during`, `${marker}-after`];
  const put = (id: string) => putSegment(db, id);
  const rowsOf = async () =>
    (await sql`select segment_id from public.firespring_segments
               where segment_id in ${sql(ids)} order by segment_id`).map((r) => r.segment_id);
  const pollerLog = logFile("stream_poller");
  const offset = isolateLogOffset(pollerLog);
  try {
    const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
    const before = Table!.LatestStreamArn!;
    // The mapping reads this stream: an item written now is delivered.
    await put(ids[0]);
    await eventually("the mapping to deliver the stream", async () => {
      const rows = await rowsOf();
      return rows.length === 1 ? rows : undefined;
    }, 60_000);
    await check(); // the check knows the stream as it is
    await db.send(
      new UpdateTableCommand({ TableName: SOURCE, StreamSpecification: { StreamEnabled: false } }),
    );
    await streamOn(db);
    const { Table: now } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
    const after = now!.LatestStreamArn!;
    assert.notEqual(after, before, "a new stream");
    await put(ids[1]);
    await eventually("the poller to see the new stream and keep to its mapping", () => {
      const text = logTextSince(offset, pollerLog);
      const news = `${SOURCE}: its stream is now ${after}, but its mapping reads ${before}`;
      return Promise.resolve(text.includes(news) ? true : undefined);
    }, 30_000);
    assert.deepEqual(await rowsOf(), [ids[0]], "nothing of the new stream is delivered");

    const since = new Date();
    const replaced = await check();
    const expected = `the stream was replaced since the last check (${before} → ${after})`;
    assert.ok(replaced.problem?.includes(expected), replaced.problem);
    assert.ok(replaced.backfillJobId, "a healing backfill is queued");
    await healingBackfillDone(sql, replaced.backfillJobId!, since);
    assert.deepEqual(await rowsOf(), ids.slice(0, 2).sort(), "the backfill read the item");

    // The mapping made again (terraform apply; here the poller started again).
    await stopDetached("stream_poller");
    await startStreamPoller();
    await put(ids[2]);
    await eventually("the new stream to be delivered", async () => {
      const rows = await rowsOf();
      return rows.length === 3 ? rows : undefined;
    }, 60_000);
  } finally {
    // The table's stream on, and the mapping made for it, whatever happened, or every later
    // stream test of this table (on this stack) would wait.
    const { Table: last } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
    if (last?.StreamSpecification?.StreamEnabled !== true) {
      await streamOn(db);
    }
    await stopDetached("stream_poller");
    await startStreamPoller();
    await deleteSegments(db, ids);
    await sql.end();
  }
});

// After the replaced stream's test, not before it: this test's last check may leave a
// chain of runs going in the background, and one that recorded the replaced stream would
// take that test's finding from it.
Deno.test("a closed shard deleted with records never applied: the check reports them lost and heals the table", async () => {
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const marker = `closed-lost-${crypto.randomUUID()}`;
  const ids = ["applied", "lost-1", "lost-2", "child"].map((n) => `${marker}-${n}`);
  const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
  const streamArn = Table!.LatestStreamArn!;
  const rowsOf = async () =>
    (await sql`select segment_id from public.firespring_segments
               where segment_id in ${sql(ids)} order by segment_id`).map((r) => r.segment_id);
  try {
    await sql`delete from sync.stream_checks where target_table = ${TARGET}`;
    await putSegment(db, ids[0]);
    await eventually("the record to be applied", async () => {
      const rows = await rowsOf();
      return rows.length === 1 ? rows : undefined;
    }, 60_000);
    await check(); // the check knows the stream

    // The mapping stops; two records arrive undelivered, and their shard closes.
    await stopDetached("stream_poller");
    await putSegment(db, ids[1]);
    await putSegment(db, ids[2]);
    assert.equal((await check()).problem, undefined, "held records are no loss");
    const shards = await closeStreamShards(streamArn);
    const closed = shards.filter((s) => s.SequenceNumberRange.EndingSequenceNumber);
    const end = closed.map((s) => s.SequenceNumberRange.EndingSequenceNumber!)
      .reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b));
    await putSegment(db, ids[3]); // in the child

    // A day later the stream trims the closed shards' records and deletes those shards.
    await trimStream(streamArn, end);
    const since = new Date();
    const lost = await check();
    assert.match(
      lost.problem ?? "",
      new RegExp(
        `^${TARGET}: lost-record check of .*: shard shardId-\\S+: gone from the ` +
          `stream with record \\d+ \\(created [^)]+\\) never applied`,
      ),
    );
    assert.ok(lost.backfillJobId, "a healing backfill is queued");
    await healingBackfillDone(sql, lost.backfillJobId!, since);
    assert.deepEqual(await rowsOf(), [...ids].sort(), "the backfill brought every item");
  } finally {
    await trimStream(streamArn, null);
    await startStreamPoller();
    await deleteSegments(db, ids);
    await sql.end();
  }
});

Deno.test("a closed shard with more empty pages before a record than a run reads: its runs hand on, read past them, and find the record", async () => {
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const marker = `gap-${crypto.randomUUID()}`;
  const ids = ["applied", "behind-the-gap"].map((n) => `${marker}-${n}`);
  const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
  const streamArn = Table!.LatestStreamArn!;
  try {
    await sql`delete from sync.stream_checks where target_table = ${TARGET}`;
    await putSegment(db, ids[0]);
    await appliedRow(sql, ids[0]);
    await check(); // through the stream's last record, every shard read

    // The mapping stops; a record arrives undelivered, and its shard closes.
    await stopDetached("stream_poller");
    await putSegment(db, ids[1]);
    await closeStreamShards(streamArn);
    const streams = dynamoStreams("us-east-1");
    let behind: { shardId: string; seq: string } | undefined;
    for (const shard of await listShards(streams, streamArn)) {
      const record = (await readShard(streams, streamArn, shard.ShardId!))
        .find((r) => JSON.stringify(r).includes(ids[1]));
      if (record) behind = { shardId: shard.ShardId!, seq: record.dynamodb!.SequenceNumber! };
    }
    assert.ok(behind, "the record is in a shard of the stream");

    // 60 empty pages before each page: more than the 50 a run reads of a shard.
    await gapStream(streamArn, 60);
    const first = await checkAnswer();
    assert.deepEqual([first.left, first.handedOn], [[TARGET], true], JSON.stringify(first));
    assert.equal(first.checked[0].problem, undefined, "no problem while its chain reads on");
    await eventually("a run of the chain to read past the empty pages to the record", async () => {
      const [row] = await sql`select shards from sync.stream_checks where target_table = ${TARGET}`;
      const state = (row.shards as Record<string, { frontier?: { seq: string } }>)[
        behind!.shardId
      ];
      return state?.frontier?.seq === behind!.seq ? row : undefined;
    }, 60_000);
  } finally {
    await gapStream(streamArn, 0);
    await startStreamPoller();
    await deleteSegments(db, ids);
    await sql.end();
  }
});

Deno.test("sync.status counts a check overdue after the gap the check itself vouches across", async () => {
  // One fact in two languages: the check's verdicts (stream_verdict.ts) and the database's
  // watchdog of the check (sync.stream_check_max_interval, sync.status).
  const sql = connectDb();
  try {
    const [{ ms }] = await sql`select extract(epoch from sync.stream_check_max_interval()) * 1000
                                 as ms`;
    assert.equal(Number(ms), MAX_CHECK_INTERVAL_MS);
  } finally {
    await sql.end();
  }
});

Deno.test("the webhook's notes say whether any record of a stream was applied since a moment", async () => {
  const sql = connectDb();
  const arn = `arn:aws:dynamodb:us-east-1:000000000000:table/x/stream/notes-${crypto.randomUUID()}`;
  try {
    await sql`insert into sync.stream_batches_applied (stream_arn, span, sequence_numbers)
              values (${arn}, numrange(1, 2, '[]'), '{1,2}')`;
    assert.equal(await streamAppliedSince(sql, arn, Date.now() - 60_000), true);
    assert.equal(await streamAppliedSince(sql, arn, Date.now() + 60_000), false, "not since");
    assert.equal(await streamAppliedSince(sql, `${arn}-other`, Date.now() - 60_000), false);
  } finally {
    await sql`delete from sync.stream_batches_applied where stream_arn = ${arn}`;
    await sql.end();
  }
});

Deno.test("a stream longer than a run's allowance is read to its end by runs that hand on, no isolate killed", async () => {
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const marker = `stream-check-long-${crypto.randomUUID()}`;
  // 250 records of 12 KB: three pages of 1 MB.
  const ids = Array.from({ length: 250 }, (_, i) => `${marker}-${i}`);
  const raw = "x".repeat(12_000);
  const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
  const streamArn = Table!.LatestStreamArn!;
  const gateway = DENO_PARTS.find((part) => part.name === "functions")!;
  const isolates = isolateLogOffset();
  let written = false;
  try {
    await check(); // the stream as it is now, read with the default allowance
    // A run's allowance of 50 ms, as an operator would set it (`supabase secrets set`):
    // a run reads one page. A developer's own file is never replaced.
    const ours = "# tests/stream_check_test.ts: one page a run\n";
    if (
      existsSync(FUNCTIONS_ENV_FILE) && !readFileSync(FUNCTIONS_ENV_FILE, "utf8").startsWith(ours)
    ) {
      throw new Error(`${FUNCTIONS_ENV_FILE} exists: move it away to run this test`);
    }
    writeFileSync(FUNCTIONS_ENV_FILE, `${ours}STREAM_CHECK_RUN_CPU_MS=50\n`);
    written = true;
    await startDenoPart(gateway, stack, true);
    const since = new Date();
    await batchWrite(db, SOURCE, ids.map((id) => ({ segment_id: { S: id }, raw: { S: raw } })));
    await eventually("every record to be applied", async () => {
      const [row] = await sql`select count(*)::int as n from public.firespring_segments
                              where segment_id like ${marker + "%"}`;
      return row.n === ids.length ? row : undefined;
    }, 60_000);
    const [{ last }] = await sql`
      select max(s)::text as last
      from sync.stream_batches_applied, unnest(sequence_numbers) as s
      where stream_arn = ${streamArn} and applied_at >= ${since}`;
    const reached = async () => {
      const [row] = await sql`select shards, problem from sync.stream_checks
                              where target_table = ${TARGET}`;
      const shards = Object.values(row.shards as Record<string, { through?: string }>);
      return shards.some((s) => s.through && BigInt(s.through) >= BigInt(last)) ? row : undefined;
    };

    // One page read, so a shard left unfinished at least (two on a loaded machine, whose
    // first check, at the default allowance, had not read an earlier shard to its end).
    const body = await checkAnswer();
    assert.ok((body.checked[0]?.unfinishedShards ?? 0) >= 1, JSON.stringify(body));
    assert.deepEqual([body.left, body.handedOn], [[TARGET], true]);

    const final = await eventually("the runs handed on to read to the end", reached, 60_000);
    assert.equal(final.problem, null);
    assert.deepEqual(killsSince(isolates, ["stream-check"]), []);
  } finally {
    if (written) {
      rmSync(FUNCTIONS_ENV_FILE, { force: true });
      await startDenoPart(gateway, stack, true);
    }
    await batchDelete(db, ids);
    await sql.end();
  }
});

Deno.test("a check's problem waits for a healing of its table in progress: no deadlock between the two", async () => {
  // sync.heal_table holds its lock, the waiting job's row and then table_state's row;
  // record_stream_check upserted table_state first, then waited on the job's row for its
  // foreign key: a deadlock. It now waits on heal_table's lock before it touches either.
  const [healer, checker] = [connectDb(), connectDb()];
  try {
    await healer.begin(async (h) => {
      await h`select pg_advisory_xact_lock(hashtext('sync.heal_table'), hashtext('firespring_segments'))`;
      await assert.rejects(
        checker.begin(async (c) => {
          await c`set local statement_timeout = '1s'`;
          await c`select sync.record_stream_check('firespring_segments', null, '{}'::jsonb,
                    'a problem (lock order test)', now())`;
        }),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, "57014", "it waited for the healing's lock");
          return true;
        },
      );
      // Rolled back: nothing of this test stays.
      throw new Error("rollback");
    }).catch((error) => {
      if ((error as Error).message !== "rollback") throw error;
    });
  } finally {
    await Promise.all([healer.end(), checker.end()]);
  }
});

Deno.test("a check's problem that a backfill at its end covers leaves the table clean: it waits for that end", async () => {
  const [sweeper, checker, watcher] = [connectDb(), connectDb(), connectDb()];
  const job = await sweeper.begin(async (tx) => {
    await tx`delete from sync.table_state where target_table = ${TARGET}`;
    const [{ id }] = await tx`select sync.start_backfill(${SOURCE}, 1, false) as id`;
    // Running, its segment held by nobody who works on it: no worker takes it meanwhile.
    // Started an hour from now, it alone covers the problem below (the jobs of the tests
    // before, done, read the table earlier).
    await tx`update sync.backfill_jobs set status = 'running', started_at = now() + interval '1 hour'
             where id = ${id}`;
    await tx`update sync.backfill_segments set status = 'running', lease_owner = 'test',
               lease_expires_at = now() + interval '10 minutes' where job_id = ${id}`;
    return String(id);
  });
  try {
    let checked: Promise<unknown> | undefined;
    await sweeper.begin(async (tx) => {
      // What the last sweep chunk does in one transaction: the job's row held, the job
      // done, the marks linked to it cleared.
      await tx`select id from sync.backfill_jobs where id = ${job} for update`;
      await tx`update sync.backfill_jobs set status = 'done', finished_at = now() where id = ${job}`;
      await tx`update sync.table_state set stale_since = null where backfill_job_id = ${job}`;
      checked = checker`select sync.record_stream_check(${TARGET}, null, '{}'::jsonb,
                          'a problem (race test)', now() + interval '30 minutes')`.execute();
      await eventually("the check to wait on the job's end", async () => {
        // Not in the transaction: pg_stat_activity is read once per transaction.
        const [{ waiting }] = await watcher`select count(*)::int as waiting
          from pg_stat_activity
          where wait_event_type = 'Lock' and query like '%record_stream_check%'
            and pid <> pg_backend_pid()`;
        return waiting === 1 ? true : undefined;
      });
    });
    await checked;
    const [state] = await checker`select stale_since, backfill_job_id from sync.table_state
                                  where target_table = ${TARGET}`;
    assert.equal(state?.stale_since ?? null, null, "the job done covers the problem: not stale");
  } finally {
    await sweeper`delete from sync.table_state where target_table = ${TARGET}`;
    await sweeper`delete from sync.backfill_segments where job_id = ${job}`;
    await sweeper`delete from sync.backfill_jobs where id = ${job}`;
    await Promise.all([sweeper.end(), checker.end(), watcher.end()]);
  }
});

/**
 * A client of DynamoDB Local itself, past the proxy: only for a scratch table whose
 * writes move DynamoDB Local's one counter of stream records on (no one reads its stream).
 */
function counterDynamo(): Dynamo {
  const endpoint = `http://${HOST}:${DYNAMODB_INTERNAL_PORT}`;
  return new DynamoDBClient(
    awsClientConfig(stackEnvReader({ ...stack, DYNAMODB_ENDPOINT: endpoint }), "us-east-1"),
  ) as Dynamo;
}

/** The records of segment `id` in the table's stream, oldest first. */
async function segmentRecords(streamArn: string, id: string) {
  const streams = dynamoStreams("us-east-1");
  const found = [];
  for (const s of await listShards(streams, streamArn)) {
    for (const r of await readShard(streams, streamArn, s.ShardId!)) {
      if ((r.dynamodb?.Keys as { segment_id?: { S?: string } })?.segment_id?.S === id) {
        found.push(r.dynamodb!.SequenceNumber!);
      }
    }
  }
  return found;
}
