import assert from "node:assert/strict";
import {
  followRealRollover,
  holds,
  keyTextOf,
  newLineage,
  openShards,
  rollOver,
  windowOf,
} from "./shard_lineage.ts";
import { describedShards } from "./shard_listing.ts";

const REAL = "shardId-00000001796108950137-32f09a4a";
const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T07:09:10.119";
const pad = (n: number) => String(n).padStart(21, "0");
const record = (seq: number, key = "k") => ({
  dynamodb: { SequenceNumber: pad(seq), Keys: { id: { S: key } } },
});

Deno.test("a rollover closes the open shard at the cut, with one child after it", () => {
  const lineage = rollOver(
    newLineage({ ShardId: REAL, SequenceNumberRange: { StartingSequenceNumber: pad(1) } }),
    pad(9),
    1,
  );
  const [first, child] = describedShards(lineage);
  assert.deepEqual(first, {
    ShardId: REAL,
    SequenceNumberRange: {
      StartingSequenceNumber: "000000000000000000001",
      EndingSequenceNumber: "000000000000000000009",
    },
  });
  assert.equal(child.ParentShardId, REAL);
  assert.deepEqual(child.SequenceNumberRange, { StartingSequenceNumber: "000000000000000000010" });
  assert.match(String(child.ShardId), /^shardId-\d{20}-[0-9a-f]{8}$/);
  assert.ok(holds(lineage.shards[0], "000000000000000000009", "k"));
  assert.ok(!holds(lineage.shards[0], "000000000000000000010", "k"));
  assert.ok(holds(lineage.shards[1], "000000000000000000010", "k"));
  assert.ok(!holds(lineage.shards[1], "000000000000000000009", "k"));
});

Deno.test("a split shares the keys out: each key in exactly one child, the same one every time", () => {
  let lineage = rollOver(newLineage({ ShardId: REAL }), "5", 2);
  lineage = rollOver(lineage, "9", 2); // each child splits again: four open shards
  const open = openShards(lineage);
  assert.equal(open.length, 4);
  const counts = new Map<string, number>();
  for (let k = 0; k < 400; k++) {
    const key = keyTextOf({ id: { S: `key-${k}` } });
    const owners = open.filter((shard) => holds(shard, "10", key));
    assert.equal(owners.length, 1, `key-${k} is held by ${owners.length} shards`);
    counts.set(owners[0].id, (counts.get(owners[0].id) ?? 0) + 1);
    // Its parent (a child of the first split) held it too: a key stays in one line.
    const parent = lineage.shards.find((s) => s.id === owners[0].parent)!;
    assert.ok(holds(parent, "7", key));
  }
  assert.equal(counts.size, 4, "every child gets keys");
  for (const n of counts.values()) assert.ok(n > 50, `a child holds ${n} of 400 keys`);
});

Deno.test("a key's text does not depend on its attributes' order", () => {
  assert.equal(
    keyTextOf({ a: { S: "1" }, b: { N: "2" } }),
    keyTextOf({ b: { N: "2" }, a: { S: "1" } }),
  );
});

Deno.test("an idle shard closes empty, listed as ending where it starts, as DynamoDB Local seals one", () => {
  const rolled = rollOver(newLineage({ ShardId: REAL }), pad(9), 2);
  const idle = rollOver(rolled, pad(9), 1); // no record since the split
  const [, half] = idle.shards;
  assert.equal(half.through, pad(9), "no record is its own");
  assert.equal(holds(half, pad(10), keyTextOf({ id: { S: "k" } })), false);
  const listed = describedShards(idle).find((s) => s.ShardId === half.id)!;
  assert.deepEqual(listed.SequenceNumberRange, {
    StartingSequenceNumber: pad(10),
    EndingSequenceNumber: pad(10),
  });
  const children = openShards(idle);
  assert.equal(children.length, 2);
  for (const child of children) {
    assert.equal(child.after, pad(9), "the children take the records after it");
    const parent = idle.shards.find((s) => s.id === child.parent)!;
    assert.deepEqual(child.shares, parent.shares, "each half's keys");
  }
  assert.throws(() => rollOver(idle, pad(12), 5), /1 to 4 children/);
});

Deno.test("DynamoDB Local's own rollover closes the open shards at its end, one child each over the new shard", () => {
  let lineage = rollOver(newLineage({ ShardId: REAL, ParentShardId: "shardId-older" }), "5", 2);
  lineage = followRealRollover(lineage, "12", "shardId-real-2");
  const listed = describedShards(lineage);
  assert.equal(listed[0].ParentShardId, "shardId-older", "the first keeps its real parent");
  const open = openShards(lineage);
  assert.equal(open.length, 2);
  for (const shard of open) {
    assert.equal(shard.real, "shardId-real-2");
    assert.equal(shard.after, "12");
    const parent = lineage.shards.find((s) => s.id === shard.parent)!;
    assert.equal(parent.through, "12");
    assert.deepEqual(shard.shares, parent.shares, "the same keys");
  }
});

Deno.test("a page's window: the shard's own records, and its end", () => {
  const lineage = rollOver(newLineage({ ShardId: REAL }), pad(4), 1);
  const [first, child] = lineage.shards;
  const real = (pos: number) => `${ARN}|001|${btoa(`${REAL}|${pad(pos)}|1`)}`;
  // The first shard's last record, and its child's first: the first ends there.
  const page = [record(3), record(4), record(5)];
  assert.deepEqual(windowOf(first, page, real(6)), { mine: page.slice(0, 2), ended: true });
  assert.deepEqual(windowOf(child, page, real(6)), { mine: page.slice(2), ended: false });
  // An empty page past the cut ends a closed shard; before it, it does not.
  assert.equal(windowOf(first, [], real(5)).ended, true);
  assert.equal(windowOf(first, [], real(3)).ended, false);
  // A real shard read to its end (no next iterator) ends whatever reads it.
  assert.equal(windowOf(child, [record(6)], undefined).ended, true);
});
