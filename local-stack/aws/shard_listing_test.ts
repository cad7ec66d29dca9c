import assert from "node:assert/strict";
import { pageOfShards, withoutTrimmed } from "./shard_listing.ts";

const pad = (n: number) => String(n).padStart(21, "0");

Deno.test("DescribeStream's pages: 1 to 100 shards, after a shard of the stream", () => {
  const shards = Array.from({ length: 5 }, (_, i) => ({ ShardId: `s${i}` }));
  assert.deepEqual(pageOfShards(shards, 2, "s1"), {
    page: [{ ShardId: "s2" }, { ShardId: "s3" }],
    lastEvaluated: "s3",
  });
  assert.deepEqual(pageOfShards(shards, undefined, "s3"), { page: [{ ShardId: "s4" }] });
  assert.match(String(pageOfShards(shards, 0, undefined)), /between 1 and 100/);
  assert.match(String(pageOfShards(shards, 101, undefined)), /between 1 and 100/);
  assert.match(String(pageOfShards(shards, 2, "s9")), /s9 is no shard of the stream/);
});

Deno.test("a closed shard whose every record is trimmed is no longer listed", () => {
  const shards = [
    { ShardId: "a", SequenceNumberRange: { EndingSequenceNumber: pad(4) } },
    { ShardId: "b", SequenceNumberRange: { EndingSequenceNumber: pad(9) } },
    { ShardId: "c", SequenceNumberRange: {} },
  ];
  assert.deepEqual(withoutTrimmed(shards, pad(4)).map((s) => s.ShardId), ["b", "c"]);
  assert.deepEqual(withoutTrimmed(shards, pad(12)).map((s) => s.ShardId), ["c"]);
  assert.equal(withoutTrimmed(shards, undefined), shards);
});
