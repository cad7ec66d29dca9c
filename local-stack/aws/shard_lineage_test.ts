import assert from "node:assert/strict";
import {
  describedShards,
  endedIterator,
  holds,
  iteratorPosition,
  keyTextOf,
  newLineage,
  openShards,
  rollOver,
  unwrapIterator,
  wrapIterator,
} from "./shard_lineage.ts";

const REAL = "shardId-00000001796108950137-32f09a4a";
const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T07:09:10.119";

Deno.test("a rollover closes the open shard at the cut, with one child after it", () => {
  const lineage = rollOver(newLineage(REAL, "000000000000000000001"), "000000000000000000009", 1);
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
  let lineage = rollOver(newLineage(REAL), "5", 2);
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

Deno.test("nothing to close: no record since the open shards began", () => {
  const lineage = rollOver(newLineage(REAL), "9", 1);
  assert.throws(() => rollOver(lineage, "9", 1), /no record came since the open shards began/);
  assert.throws(() => rollOver(lineage, "12", 5), /1 to 4 children/);
});

Deno.test("iterators: wrapped, ended, and DynamoDB Local's own position", () => {
  const real = `${ARN}|001|${btoa(`${REAL}|000000000000000000010|000000000000000001796109028213`)}`;
  assert.equal(iteratorPosition(real), "000000000000000000010");
  assert.deepEqual(unwrapIterator(wrapIterator(real, "shardId-x")), {
    real,
    shardId: "shardId-x",
  });
  assert.deepEqual(unwrapIterator(endedIterator(ARN, "shardId-y")), {
    ended: true,
    shardId: "shardId-y",
  });
  assert.equal(unwrapIterator(real), undefined);
  assert.equal(iteratorPosition(`${ARN}|001|not base64!`), undefined);
});
