import assert from "node:assert/strict";
import { inListingOrder } from "./shard_order.ts";

/** A lineage as AWS names its shards (shard_lineage.ts): each a child of the one before. */
const LINEAGE = [
  "shardId-00001733300000000000-3f2a9c1e",
  "shardId-00001733314400000000-a07b5d22",
  "shardId-00001733328800000000-5c9e0f81",
  "shardId-00001733343200000000-e4d1b7a3",
  "shardId-00001733357600000000-19c6f0d4",
].map((ShardId, i, all) => ({ ShardId, ...(i > 0 ? { ParentShardId: all[i - 1] } : {}) }));

Deno.test("shards are listed in one order whatever order they came in, not the lineage's", () => {
  const listed = inListingOrder(LINEAGE);
  assert.deepEqual(inListingOrder([...LINEAGE].reverse()), listed);
  assert.deepEqual(
    inListingOrder([LINEAGE[3], LINEAGE[0], LINEAGE[4], LINEAGE[2], LINEAGE[1]]),
    listed,
  );
  assert.notDeepEqual(listed, LINEAGE, "parents first is the order AWS does not promise");
  const position = new Map(listed.map((s, i) => [s.ShardId, i]));
  const childFirst = LINEAGE.filter((s) =>
    s.ParentShardId && position.get(s.ShardId)! < position.get(s.ParentShardId)!
  );
  assert.ok(childFirst.length > 0, "some child is listed before its parent");
  assert.equal(listed.length, LINEAGE.length);
});
