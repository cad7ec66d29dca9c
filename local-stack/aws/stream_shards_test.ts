import assert from "node:assert/strict";
import { inListingOrder } from "./shard_order.ts";
import { SHARDS_PATH, StreamShards } from "./stream_shards.ts";

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T07:09:10.119";
const REAL = "shardId-00000001796108950137-32f09a4a";
const URL_ = "http://127.0.0.1:8000/";
const pad = (n: number) => String(n).padStart(21, "0");

interface Held {
  seq: number;
  key: string;
}

/** One of DynamoDB Local's shards of the stream: its records, and whether it rolled over. */
interface Real {
  id: string;
  parent?: string;
  records: Held[];
  closed?: boolean;
}

/** How the fake DynamoDB Local behaves besides its shards. */
interface Quirks {
  /** Records up to this one are trimmed (an iterator at or before it is refused). */
  trimmedThrough?: number;
  /** Awaited before a LATEST iterator is answered (its position taken before). */
  latestGate?: Promise<void>;
}

/**
 * DynamoDB Local's shards of the stream, as the hook's `next`: `records` in one open shard
 * (the array is read at each request), or `reals` in order, each rolled over into the next.
 */
function dynamoLocal(records: Held[] | Real[], quirks: Quirks = {}) {
  const reals: Real[] = records.length > 0 && "records" in records[0]
    ? records as Real[]
    : [{ id: REAL, records: records as Held[] }];
  const iterator = (real: string, pos: number) =>
    `${ARN}|001|${btoa(`${real}|${pad(pos)}|1796109028213`)}`;
  const decode = (it: string) => atob(it.split("|")[2]).split("|");
  const trimmed = () =>
    Response.json({ __type: "x#TrimmedDataAccessException", message: "trimmed" }, { status: 400 });
  return async (request: Request): Promise<Response> => {
    const operation = request.headers.get("x-amz-target")!.split(".")[1];
    const body = await request.json();
    if (operation === "DescribeStream") {
      assert.equal(body.ExclusiveStartShardId, undefined, "DynamoDB Local knows only its own");
      return Response.json({
        StreamDescription: {
          StreamArn: ARN,
          Shards: reals.map((r) => ({
            ShardId: r.id,
            ...(r.parent ? { ParentShardId: r.parent } : {}),
            SequenceNumberRange: {
              StartingSequenceNumber: pad(r.records[0]?.seq ?? 1),
              ...(r.closed ? { EndingSequenceNumber: pad(r.records.at(-1)!.seq) } : {}),
            },
          })),
        },
      });
    }
    if (operation === "GetShardIterator") {
      const real = reals.find((r) => r.id === body.ShardId)!;
      assert.ok(real, `no real shard ${body.ShardId}`);
      const last = real.records.at(-1)?.seq ?? 0;
      const horizon = (quirks.trimmedThrough ?? 0) + 1;
      const type = body.ShardIteratorType as string;
      if (type === "LATEST") await quirks.latestGate;
      const pos = { TRIM_HORIZON: horizon, LATEST: last + 1 }[type] ??
        Number(body.SequenceNumber) + (type === "AFTER_SEQUENCE_NUMBER" ? 1 : 0);
      if (pos < horizon) return trimmed();
      return Response.json({ ShardIterator: iterator(real.id, pos) });
    }
    const [id, at] = decode(body.ShardIterator);
    const real = reals.find((r) => r.id === id)!;
    const pos = Number(at);
    const page = real.records.filter((r) => r.seq >= pos).slice(0, body.Limit ?? 1000);
    const end = page.length > 0 ? page.at(-1)!.seq + 1 : pos;
    const done = real.closed && !real.records.some((r) => r.seq >= end);
    return Response.json({
      Records: page.map((r) => ({
        dynamodb: { SequenceNumber: pad(r.seq), Keys: { id: { S: r.key } } },
      })),
      ...(done ? {} : { NextShardIterator: iterator(real.id, end) }),
    });
  };
}

/** {@link dynamoLocal}, its LATEST iterators held until `release` is called. */
function gatedDynamoLocal(records: Held[]) {
  let release!: () => void;
  const latestGate = new Promise<void>((resolve) => release = resolve);
  return { next: dynamoLocal(records, { latestGate }), release };
}

function streamsCall(operation: string, body: unknown): Request {
  return new Request(URL_, {
    method: "POST",
    headers: { "x-amz-target": `DynamoDBStreams_20120810.${operation}` },
    body: JSON.stringify(body),
  });
}

async function close(shards: StreamShards, next: ReturnType<typeof dynamoLocal>, split = 1) {
  return await shards.handle(
    new Request(`${URL_}${SHARDS_PATH.slice(1)}`, {
      method: "POST",
      body: JSON.stringify({ streamArn: ARN, region: "us-east-1", split }),
    }),
    next,
  );
}

type Next = ReturnType<typeof dynamoLocal>;
const call = async (shards: StreamShards, next: Next, operation: string, body: unknown) =>
  await (await shards.handle(streamsCall(operation, body), next)).json();

/** Every record of a shard from its horizon, in pages of `limit`, and how many pages. */
async function readAll(shards: StreamShards, next: Next, shardId: string, limit = 1000) {
  let { ShardIterator: iterator } = await call(shards, next, "GetShardIterator", {
    StreamArn: ARN,
    ShardId: shardId,
    ShardIteratorType: "TRIM_HORIZON",
  });
  const seqs: number[] = [];
  let pages = 0;
  while (iterator && pages < 50) {
    const page = await call(shards, next, "GetRecords", { ShardIterator: iterator, Limit: limit });
    pages++;
    for (const r of page.Records) seqs.push(Number(r.dynamodb.SequenceNumber));
    if (page.Records.length === 0 && page.NextShardIterator) break; // the open shard's end
    iterator = page.NextShardIterator;
  }
  return { seqs, ended: iterator === undefined, pages };
}

const keys = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, key: `k${(from + i) % 7}` }));

/** A listing of {@link REAL} and its one child, as [parent, child]. */
function lineageOf(
  listed: Shard[],
): [Shard, Shard] {
  const parent = listed.find((s) => s.ShardId === REAL);
  const child = listed.find((s) => s.ParentShardId === REAL);
  assert.ok(parent && child, JSON.stringify(listed));
  return [parent, child];
}

type Shard = {
  ShardId: string;
  ParentShardId?: string;
  SequenceNumberRange: { EndingSequenceNumber?: string };
};

Deno.test("a stream never closed passes through untouched", async () => {
  const records = keys(1, 3);
  const next = dynamoLocal(records);
  const shards = new StreamShards({ accessKeyId: "local" });
  const { Shards } = (await call(shards, next, "DescribeStream", { StreamArn: ARN }))
    .StreamDescription;
  assert.deepEqual(Shards.map((s: { ShardId: string }) => s.ShardId), [REAL]);
  assert.deepEqual((await readAll(shards, next, REAL)).seqs, [1, 2, 3]);
});

Deno.test("a rollover: the first shard ends at the cut, its child reads on; an iterator from before is bounded", async () => {
  const records = keys(1, 4);
  const next = dynamoLocal(records);
  const shards = new StreamShards({ accessKeyId: "local" });
  const before = (await call(shards, next, "GetShardIterator", {
    StreamArn: ARN,
    ShardId: REAL,
    ShardIteratorType: "TRIM_HORIZON",
  })).ShardIterator;
  const closed = await close(shards, next);
  assert.equal(closed.status, 200);
  records.push(...keys(5, 7));
  const listed = (await call(shards, next, "DescribeStream", { StreamArn: ARN }))
    .StreamDescription.Shards;
  assert.equal(listed.length, 2);
  // Listed in no chronological order (shard_order.ts): found by their lineage.
  const [parent, child] = lineageOf(listed);
  assert.equal(parent.SequenceNumberRange.EndingSequenceNumber, pad(4));
  const first = await readAll(shards, next, REAL);
  assert.deepEqual(first, { seqs: [1, 2, 3, 4], ended: true, pages: 1 });
  assert.deepEqual((await readAll(shards, next, child.ShardId)).seqs, [5, 6, 7]);
  // DynamoDB Local's own iterator, taken before the close, reads the first shard only.
  const old = await call(shards, next, "GetRecords", { ShardIterator: before });
  assert.deepEqual(
    old.Records.map((r: { dynamodb: { SequenceNumber: string } }) => r.dynamodb.SequenceNumber),
    [1, 2, 3, 4].map(pad),
  );
  assert.equal(old.NextShardIterator, undefined);
  // LATEST of a closed shard is its end; a number outside a shard is refused.
  const latest = await call(shards, next, "GetShardIterator", {
    StreamArn: ARN,
    ShardId: REAL,
    ShardIteratorType: "LATEST",
  });
  const end = await call(shards, next, "GetRecords", { ShardIterator: latest.ShardIterator });
  assert.deepEqual(end, { Records: [] });
  const outside = await shards.handle(
    streamsCall("GetShardIterator", {
      StreamArn: ARN,
      ShardId: child.ShardId,
      ShardIteratorType: "AT_SEQUENCE_NUMBER",
      SequenceNumber: pad(3),
    }),
    next,
  );
  assert.equal(outside.status, 400);
  assert.match((await outside.json()).__type, /ValidationException$/);
  // A shard no record came to closes too (AWS rolls idle shards over), empty: listed as
  // ending where it starts, read to its end at once; its child takes the next record.
  const again = await close(shards, next);
  assert.equal(again.status, 200);
  const idle = await close(shards, next);
  assert.equal(idle.status, 200);
  const [, , empty, last] = (await idle.json()).shards;
  assert.deepEqual(empty.SequenceNumberRange, {
    StartingSequenceNumber: pad(8),
    EndingSequenceNumber: pad(8),
  });
  assert.deepEqual(await readAll(shards, next, empty.ShardId), { seqs: [], ended: true, pages: 1 });
  records.push(...keys(8, 8));
  assert.equal(last.ParentShardId, empty.ShardId);
  assert.deepEqual((await readAll(shards, next, last.ShardId)).seqs, [8]);
  assert.deepEqual((await readAll(shards, next, empty.ShardId)).seqs, [], "not the child's record");
});

Deno.test("a split: each child reads its own keys, in order, with no empty page before its end", async () => {
  const records = keys(1, 2);
  const next = dynamoLocal(records);
  const shards = new StreamShards({ accessKeyId: "local" });
  assert.equal((await close(shards, next, 2)).status, 200);
  records.push(...keys(3, 60));
  const listed = (await call(shards, next, "DescribeStream", { StreamArn: ARN }))
    .StreamDescription.Shards;
  const children = listed.filter((s: { ParentShardId?: string }) => s.ParentShardId === REAL);
  assert.equal(children.length, 2);
  const reads: { seqs: number[] }[] = [];
  for (const child of children) reads.push(await readAll(shards, next, child.ShardId, 3));
  const all = reads.flatMap((r) => r.seqs).sort((a, b) => a - b);
  assert.deepEqual(all, keys(3, 60).map((r) => r.seq), "every record once, in one child");
  for (const read of reads) {
    assert.deepEqual(read.seqs, [...read.seqs].sort((a, b) => a - b), "in order");
    assert.ok(read.seqs.length > 0);
  }
  const owner = (key: string) =>
    reads.findIndex((read) => read.seqs.some((seq) => `k${seq % 7}` === key));
  for (const r of keys(3, 60)) {
    assert.ok(reads[owner(r.key)].seqs.includes(r.seq), `${r.key}'s records in one child`);
  }
});

Deno.test("DescribeStream pages the lineage by Limit and ExclusiveStartShardId", async () => {
  const records = keys(1, 1);
  const next = dynamoLocal(records);
  const shards = new StreamShards({ accessKeyId: "local" });
  for (let seq = 2; seq <= 4; seq++) {
    assert.equal((await close(shards, next)).status, 200);
    records.push({ seq, key: "k" });
  }
  const ids: string[] = [];
  let start: string | undefined;
  do {
    const { StreamDescription } = await call(shards, next, "DescribeStream", {
      StreamArn: ARN,
      Limit: 3,
      ...(start ? { ExclusiveStartShardId: start } : {}),
    });
    ids.push(...StreamDescription.Shards.map((s: { ShardId: string }) => s.ShardId));
    start = StreamDescription.LastEvaluatedShardId;
  } while (start);
  assert.equal(ids.length, 4);
  assert.equal(new Set(ids).size, 4);
  // In no chronological order: by their ids' hash (shard_order.ts), not the lineage's.
  const hashed = inListingOrder(ids.map((ShardId) => ({ ShardId }))).map((s) => s.ShardId);
  assert.deepEqual(ids, hashed);
});

Deno.test("the lineages outlive the proxy; the control refuses what it cannot do", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/stream-shards.json`;
  try {
    const records = keys(1, 2);
    const next = dynamoLocal(records);
    const shards = new StreamShards({ accessKeyId: "local", file });
    assert.equal((await close(shards, next)).status, 200);
    const again = new StreamShards({ accessKeyId: "local", file });
    assert.equal(again.lineage(ARN)?.shards.length, 2);
    const bad = await again.handle(
      new Request(`${URL_}${SHARDS_PATH.slice(1)}`, { method: "POST", body: "{}" }),
      next,
    );
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /streamArn .* and region .* are required/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DynamoDB Local's own rollover: each open shard ends at its real shard's end, a child reads on", async () => {
  const first: Real = { id: REAL, records: keys(1, 4) };
  const next = dynamoLocal([first]);
  const shards = new StreamShards({ accessKeyId: "local" });
  assert.equal((await close(shards, next, 2)).status, 200);
  first.records.push(...keys(5, 12));
  // DynamoDB Local's 4 hours pass: its shard closes, a new one takes what follows.
  first.closed = true;
  const second: Real = { id: "shardId-real-2", parent: REAL, records: keys(13, 30) };
  const withRollover = dynamoLocal([first, second]);
  const listed = (await call(shards, withRollover, "DescribeStream", { StreamArn: ARN }))
    .StreamDescription.Shards as { ShardId: string; ParentShardId?: string }[];
  assert.equal(listed.length, 5, "the first, its two halves, and a child of each");
  assert.ok(!listed.some((s) => s.ShardId === second.id), "the new real shard is not listed");
  const seqs: number[] = [];
  for (const shard of listed) {
    const read = await readAll(shards, withRollover, shard.ShardId);
    seqs.push(...read.seqs);
    const open = listed.every((s) => s.ParentShardId !== shard.ShardId);
    assert.equal(read.ended, !open, `${shard.ShardId} ends when closed`);
  }
  assert.deepEqual(seqs.sort((a, b) => a - b), keys(1, 30).map((r) => r.seq));
  // And the next close cuts the new real shard.
  assert.equal((await close(shards, withRollover)).status, 200);
});

Deno.test("a shard whose start was trimmed reads from the trim's horizon", async () => {
  const records = keys(1, 2);
  const shards = new StreamShards({ accessKeyId: "local" });
  assert.equal((await close(shards, dynamoLocal(records))).status, 200);
  records.push(...keys(3, 8));
  const next = dynamoLocal(records, { trimmedThrough: 4 });
  const listed = (await call(shards, next, "DescribeStream", { StreamArn: ARN }))
    .StreamDescription.Shards;
  assert.deepEqual((await readAll(shards, next, lineageOf(listed)[1].ShardId)).seqs, [5, 6, 7, 8]);
});

Deno.test("a read answered while a close is in progress gives no record past the cut", async () => {
  const records = keys(1, 6);
  const { next, release } = gatedDynamoLocal(records);
  const shards = new StreamShards({ accessKeyId: "local" });
  const { ShardIterator: before } = await call(shards, next, "GetShardIterator", {
    StreamArn: ARN,
    ShardId: REAL,
    ShardIteratorType: "TRIM_HORIZON",
  });
  // The close takes its cut (6)...
  const closing = close(shards, next);
  await new Promise((resolve) => setTimeout(resolve, 10));
  records.push(...keys(7, 8)); // ...records come after it...
  const read = call(shards, next, "GetRecords", { ShardIterator: before }); // ...and are read
  await new Promise((resolve) => setTimeout(resolve, 10));
  release();
  assert.equal((await closing).status, 200);
  const page = await read;
  assert.deepEqual(
    page.Records.map((r: { dynamodb: { SequenceNumber: string } }) => r.dynamodb.SequenceNumber),
    keys(1, 6).map((r) => pad(r.seq)),
  );
  assert.equal(page.NextShardIterator, undefined, "the first shard ends at the cut");
});

Deno.test("two closes at once: the second cuts what the first made", async () => {
  const records = keys(1, 4);
  const { next, release } = gatedDynamoLocal(records);
  const shards = new StreamShards({ accessKeyId: "local" });
  const first = close(shards, next);
  const second = close(shards, next);
  await new Promise((resolve) => setTimeout(resolve, 10));
  records.push(...keys(5, 6)); // after the first's cut (4), before the second's
  release();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  const lineage = shards.lineage(ARN)!.shards;
  assert.deepEqual(lineage.map((s) => s.through), [pad(4), pad(6), undefined]);
  assert.deepEqual(lineage.map((s) => s.parent), [undefined, lineage[0].id, lineage[1].id]);
});

Deno.test("a closed shard's end expires as any iterator does, 15 minutes after it was given", async () => {
  const records = keys(1, 2);
  const next = dynamoLocal(records);
  let now = 1_000_000;
  const shards = new StreamShards({ accessKeyId: "local", now: () => now });
  assert.equal((await close(shards, next)).status, 200);
  const { ShardIterator } = await call(shards, next, "GetShardIterator", {
    StreamArn: ARN,
    ShardId: REAL,
    ShardIteratorType: "LATEST",
  });
  now += 14 * 60_000;
  assert.deepEqual(await call(shards, next, "GetRecords", { ShardIterator }), { Records: [] });
  now += 2 * 60_000;
  const expired = await shards.handle(streamsCall("GetRecords", { ShardIterator }), next);
  assert.equal(expired.status, 400);
  assert.match((await expired.json()).__type, /ExpiredIteratorException$/);
});

Deno.test("an iterator of a shard the lineage does not hold answers ExpiredIteratorException", async () => {
  const next = dynamoLocal(keys(1, 4));
  const shards = new StreamShards({ accessKeyId: "local" });
  assert.equal((await close(shards, next)).status, 200);
  const child = shards.lineage(ARN)!.shards[1].id;
  const { ShardIterator } = await call(shards, next, "GetShardIterator", {
    StreamArn: ARN,
    ShardId: child,
    ShardIteratorType: "TRIM_HORIZON",
  });
  assert.match(ShardIterator, /\|shard\|/);
  const gone = `${ShardIterator.slice(0, ShardIterator.lastIndexOf("|shard|"))}|shard|shardId-gone`;
  const answer = await shards.handle(streamsCall("GetRecords", { ShardIterator: gone }), next);
  assert.equal(answer.status, 400);
  const body = await answer.json();
  assert.match(body.__type, /ExpiredIteratorException$/);
  assert.match(body.message, /its shard is gone/);
});
