/**
 * Shards that close and split, as AWS's do every few hours and under load
 * (local-stack/aws/stream_shards.ts): the searches table's stream is rolled over, split in
 * two, and rolled over again while its items change. Lambda's mapping (the poller) reads
 * each parent to its end before its children, every change reaches its row, each record
 * sits in exactly one shard with a key's records in one line of shards, and the
 * lost-record check reads the closed shards to their ends and finds nothing lost, also
 * once the stream trimmed the first shards' records and deleted those shards.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import {
  DeleteItemCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../demo/load_dynamo.ts";
import { listShards } from "../local-stack/aws/stream_reader.ts";
import { POLLER_STATE_FILE } from "../local-stack/aws/stream_positions.ts";
import {
  callFunction,
  closeStreamShards,
  connectDb,
  dynamo,
  dynamoStreams,
  eventually,
  serviceRoleHeaders,
  streamRecordsContaining,
  trimStream,
} from "./stack_clients.ts";

const SOURCE = "firespring-backdoor-searches-dev";
const TARGET = "firespring_searches";

/** Closes the stream's open shards, each with `split` children; returns where they ended. */
async function closeShards(streamArn: string, split: number): Promise<string> {
  const endings = (await closeStreamShards(streamArn, split))
    .map((s) => s.SequenceNumberRange.EndingSequenceNumber).filter((e) => e !== undefined);
  return endings.reduce((a, b) => (BigInt(a!) > BigInt(b!) ? a : b))!;
}

/** Writes `query` to the searches of `ids`. */
async function write(db: DynamoDBClient, ids: string[], query: string): Promise<void> {
  const items = ids.map((id) => ({ search_id: { S: id }, query: { S: query } }));
  assert.equal(await batchWrite(db, SOURCE, items), ids.length);
}

interface ShardCheck {
  done?: boolean;
  frontier?: unknown;
}

Deno.test("a stream whose shards roll over and split: every change arrives, each once, and nothing reads as lost", async () => {
  const sql = connectDb();
  const db = dynamo("us-east-1");
  const marker = `shards-${crypto.randomUUID()}`;
  const ids = Array.from({ length: 40 }, (_, i) => `${marker}-${String(i).padStart(2, "0")}`);
  const { Table } = await db.send(new DescribeTableCommand({ TableName: SOURCE }));
  const streamArn = Table!.LatestStreamArn!;
  const listed = await listShards(dynamoStreams("us-east-1"), streamArn);
  const openBefore = listed.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber).length;
  // A stream split once already (this test run on the stack before) rolls over instead:
  // each run would double its open shards, and the poller's and the check's reads.
  const ways = openBefore === 1 ? 2 : 1;
  /** A run of the lost-record check of the table: nothing lost, nothing failed. */
  // (429: the isolate runs two already; busy: a run the last one handed on reads the
  // table's stream. Either is a chain of runs still under way: asked again shortly.)
  const check = async () => {
    for (let attempt = 0;; attempt++) {
      const response = await callFunction("stream-check", {
        method: "POST",
        headers: serviceRoleHeaders(),
        body: JSON.stringify({ tables: [TARGET] }),
      });
      const body = await response.json();
      if (response.status === 429) return;
      assert.equal(response.status, 200, JSON.stringify(body));
      if (body.busy?.includes(TARGET) && attempt < 60) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      assert.equal(body.checked.length, 1, JSON.stringify(body));
      assert.equal(body.checked[0].error, undefined, body.checked[0].error);
      assert.equal(body.checked[0].problem, undefined, body.checked[0].problem);
      return;
    }
  };
  try {
    // A first run on the table takes the stream as it finds it (a stack whose DynamoDB
    // Local started again has new streams).
    await sql`delete from sync.stream_checks where target_table = ${TARGET}`;
    await write(db, ids.slice(0, 30), "v1");
    await check(); // the check knows the stream before its shards close: the rest are new
    const firstCut = await closeShards(streamArn, 1); // a rollover
    // Nothing written since (no other file of the batch writes this table): each open
    // shard closes empty, as AWS rolls idle shards over, and is listed ending where it starts.
    const idle = (await closeStreamShards(streamArn, 1)).filter((s) => {
      const range = s.SequenceNumberRange;
      return range.EndingSequenceNumber !== undefined &&
        BigInt(range.EndingSequenceNumber) > BigInt(firstCut);
    });
    assert.equal(idle.length, openBefore, "the shards the rollover opened closed");
    for (const shard of idle) {
      const range = shard.SequenceNumberRange;
      assert.equal(range.EndingSequenceNumber, range.StartingSequenceNumber, "empty");
    }
    await write(db, ids, "v2");
    await closeShards(streamArn, ways); // a split: the keys shared out between two children
    await write(db, ids, "v3");
    for (const id of ids.slice(35)) {
      await db.send(new DeleteItemCommand({ TableName: SOURCE, Key: { search_id: { S: id } } }));
    }
    await closeShards(streamArn, 1); // each child rolls over
    await write(db, ids.slice(0, 20), "v4");

    const expected = ids.slice(0, 35).map((id, i) => ({ id, query: i < 20 ? "v4" : "v3" }));
    await eventually("every change to reach its row", async () => {
      const rows = await sql`select search_id as id, query from public.firespring_searches
                             where search_id like ${marker + "%"} order by search_id`;
      return JSON.stringify(rows) === JSON.stringify(expected) ? rows : undefined;
    }, 90_000);

    // The lineage: each shard open at the start rolled over twice (once idle), split in
    // two, and each half rolled over again: twice as many open shards, each the child of a
    // half of a split.
    const { shards, found } = await streamRecordsContaining(TARGET, marker);
    const open = shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
    assert.equal(open.length, ways * openBefore, `${open.length} open shards`);
    const parentOf = (id?: string) => shards.find((s) => s.ShardId === id)!;
    const halves = open.map((s) => parentOf(s.ParentShardId));
    for (const half of halves) {
      const pair = halves.filter((h) => h.ParentShardId === half.ParentShardId);
      assert.equal(pair.length, ways, "the children of one shard at the split");
      assert.ok(parentOf(half.ParentShardId).ParentShardId, "the split's shard had a parent");
    }

    // Each change once, in one shard; a key's records in one line, in order.
    assert.equal(found.length, 30 + 40 + 40 + 5 + 20);
    const seqs = found.map((f) => f.record.dynamodb!.SequenceNumber!);
    assert.equal(new Set(seqs).size, seqs.length, "no record in two shards");
    for (const id of ids) {
      const mine = found.filter((f) => JSON.stringify(f.record.dynamodb).includes(`"${id}"`));
      const order = mine.map((f) => BigInt(f.record.dynamodb!.SequenceNumber!));
      assert.deepEqual(order, [...order].sort((a, b) => (a < b ? -1 : 1)), `${id} in order`);
      const afterSplit = new Set(
        mine.map((f) => f.shardId).filter((s) => halves.some((h) => h.ShardId === s)),
      );
      assert.ok(afterSplit.size <= 1, `${id}'s records after the split are in one half`);
    }

    // The mapping read each parent to its end before its children: each key's records
    // were applied in their order (when each batch committed, sync.stream_batches_applied).
    const plain = seqs.map((seq) => BigInt(seq).toString());
    const appliedAt = new Map(
      (await sql`select s::text as seq, min(applied_at) as at
                 from sync.stream_batches_applied, unnest(sequence_numbers) as s
                 where stream_arn = ${streamArn} and s::text = any(${plain})
                 group by s`).map((r) => [r.seq as string, new Date(r.at).getTime()]),
    );
    assert.equal(appliedAt.size, plain.length, "every record applied");
    for (const id of ids) {
      const times = found
        .filter((f) => JSON.stringify(f.record.dynamodb).includes(`"${id}"`))
        .map((f) => BigInt(f.record.dynamodb!.SequenceNumber!))
        .sort((a, b) => (a < b ? -1 : 1))
        .map((seq) => appliedAt.get(seq.toString())!);
      assert.deepEqual(times, [...times].sort((a, b) => a - b), `${id}'s records applied in order`);
    }

    // The mapping read every closed shard to its end.
    if (existsSync(POLLER_STATE_FILE)) {
      const state = JSON.parse(readFileSync(POLLER_STATE_FILE, "utf8"))[streamArn] ?? {};
      for (const shard of shards.filter((s) => s.SequenceNumberRange?.EndingSequenceNumber)) {
        assert.equal(state[shard.ShardId!], "done", `the mapping finished ${shard.ShardId}`);
      }
    }

    // The lost-record check: every closed shard read to its end, nothing lost or waiting
    // (a stream of more shards than a run reads, as when this test ran on the stack
    // before, takes a chain of runs, and runs again).
    const unfinished = async () => {
      await check();
      const [{ shards: checked }] = await sql`select shards from sync.stream_checks
                                              where target_table = ${TARGET}`;
      return shards.filter((shard) => {
        const state = (checked as Record<string, ShardCheck>)[shard.ShardId!];
        const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
        return !state || state.frontier !== undefined || (closed && state.done !== true);
      }).map((shard) => shard.ShardId);
    };
    let left: (string | undefined)[] = [];
    await eventually("the check to read every shard", async () => {
      left = await unfinished();
      return left.length === 0 ? true : undefined;
    }, 60_000).catch((error) => {
      throw new Error(`the check did not finish ${left.join(", ")}: ${error.message}`);
    });

    // A day later the stream trims the first close's records, and deletes the shards that
    // held only those: nothing reads as lost, and the rest is listed as before.
    await trimStream(streamArn, firstCut);
    const kept = await listShards(dynamoStreams("us-east-1"), streamArn);
    const deleted = shards.filter((s) => !kept.some((k) => k.ShardId === s.ShardId));
    assert.ok(deleted.length > 0, "the shards that ended at the first close are gone");
    for (const shard of deleted) {
      const ending = shard.SequenceNumberRange!.EndingSequenceNumber!;
      assert.ok(BigInt(ending) <= BigInt(firstCut), `${shard.ShardId} ended by the cut`);
    }
    assert.equal(kept.length, shards.length - deleted.length);
    await check();
    await check();
  } finally {
    await trimStream(streamArn, null);
    await sql.end();
  }
});
