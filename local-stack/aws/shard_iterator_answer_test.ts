import assert from "node:assert/strict";
import { lineageIterator } from "./shard_iterator_answer.ts";
import type { Lineage } from "./shard_lineage.ts";
import { unwrapIterator } from "./shard_iterators.ts";

const ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-04T00:00:00.000";
const REAL = "shardId-00000000000000000001-aaaaaaaa";

/** One real shard, closed at 100 and split in two children that read on from it. */
const lineage: Lineage = {
  shards: [
    { id: REAL, real: REAL, after: "0", through: "100", shares: [] },
    { id: "child-a", parent: REAL, real: REAL, after: "100", shares: [] },
    { id: "child-b", parent: REAL, real: REAL, after: "100", shares: [] },
  ],
  splits: 1,
};

/** DynamoDB Local behind the hook: records what it was asked, answers an iterator. */
function fakeLocal(answer?: () => Response) {
  const asked: Record<string, unknown>[] = [];
  const next = async (request: Request) => {
    asked.push(await request.json());
    return answer?.() ?? Response.json({ ShardIterator: `${ARN}|001|real` });
  };
  return { asked, next };
}

function request(body: Record<string, unknown>): [Request, Record<string, unknown>] {
  const text = JSON.stringify({ StreamArn: ARN, ...body });
  return [new Request("http://local/", { method: "POST", body: text }), JSON.parse(text)];
}

Deno.test("a sequence number outside the shard is refused as AWS does, naming the shard", async () => {
  const local = fakeLocal();
  const [req, body] = request({
    ShardId: "child-a",
    ShardIteratorType: "AT_SEQUENCE_NUMBER",
    SequenceNumber: "50",
  });
  const response = await lineageIterator(req, body, lineage, 0, local.next);
  assert.equal(response.status, 400);
  const error = await response.json();
  assert.match(error.__type, /ValidationException$/);
  assert.match(error.message, /Invalid SequenceNumber 50 for shard child-a/);
  assert.equal(local.asked.length, 0, "nothing asked of DynamoDB Local");
});

Deno.test("LATEST of a closed shard is its end: an iterator that reads nothing", async () => {
  const local = fakeLocal();
  const [req, body] = request({ ShardId: REAL, ShardIteratorType: "LATEST" });
  const response = await lineageIterator(req, body, lineage, 1_000, local.next);
  const { ShardIterator } = await response.json();
  assert.deepEqual(unwrapIterator(ShardIterator), { ended: true, shardId: REAL, issuedAt: 1_000 });
  assert.equal(local.asked.length, 0);
});

Deno.test("TRIM_HORIZON of a child starts after its parent's end, in the real shard", async () => {
  const local = fakeLocal();
  const [req, body] = request({ ShardId: "child-b", ShardIteratorType: "TRIM_HORIZON" });
  const response = await lineageIterator(req, body, lineage, 0, local.next);
  assert.equal(response.status, 200);
  assert.deepEqual(local.asked, [{
    StreamArn: ARN,
    ShardId: REAL,
    ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
    SequenceNumber: "100",
  }]);
  const { ShardIterator } = await response.json();
  assert.equal(unwrapIterator(ShardIterator)?.shardId, "child-b");
});

Deno.test("a shard the lineage does not hold is DynamoDB Local's to answer, as asked", async () => {
  const local = fakeLocal(() => Response.json({ ShardIterator: "theirs" }));
  const [req, body] = request({ ShardId: "shardId-older", ShardIteratorType: "TRIM_HORIZON" });
  const response = await lineageIterator(req, body, lineage, 0, local.next);
  assert.deepEqual(await response.json(), { ShardIterator: "theirs" });
  assert.deepEqual(local.asked, [body]);
});
