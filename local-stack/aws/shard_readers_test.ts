import assert from "node:assert/strict";
import {
  MAPPING_READING_MS,
  markIterator,
  MAX_READERS,
  READING_MS,
  ShardReaders,
  unmarkIterator,
} from "./shard_readers.ts";
import { IDLE_REFRESH_MS, MAPPING_HEADER } from "./stream_watch.ts";

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T00:00:00.000";
/** DynamoDB Local's form of an iterator of `shard` (shard_iterators.ts). */
const real = (shard: string, seq = "100") => `${ARN}|001|${btoa(`${shard}|${seq}|0`)}`;

/** A shard's stream served by a fake DynamoDB Local, through the layer, on a fake clock. */
function served(watching = true) {
  let now = 0;
  const seen: string[] = [];
  const state = { watching, ended: false };
  const readers = new ShardReaders({
    now: () => now,
    mapping: { mark: () => "instance-1", watching: () => state.watching },
  });
  const next = async (request: Request) => {
    const target = request.headers.get("x-amz-target")!;
    const body = JSON.parse(await request.text());
    if (target.endsWith("GetShardIterator")) {
      return Response.json({ ShardIterator: real(body.ShardId) });
    }
    seen.push(body.ShardIterator);
    if (state.ended) return Response.json({ Records: [] });
    return Response.json({ Records: [], NextShardIterator: body.ShardIterator });
  };
  const ask = (operation: string, body: unknown, mapping: boolean | string = false) =>
    readers.handle(
      new Request("http://dynamodb/", {
        method: "POST",
        headers: {
          "x-amz-target": `DynamoDBStreams_20120810.${operation}`,
          ...(mapping ? { [MAPPING_HEADER]: mapping === true ? "instance-1" : mapping } : {}),
        },
        body: JSON.stringify(body),
      }),
      next,
    );
  const iterator = async (shard = "shardId-1") =>
    (await (await ask("GetShardIterator", { StreamArn: ARN, ShardId: shard })).json())
      .ShardIterator as string;
  const read = async (iterator: string, mapping: boolean | string = false) => {
    const response = await ask("GetRecords", { ShardIterator: iterator }, mapping);
    return { status: response.status, body: await response.json() };
  };
  return { iterator, read, seen, advance: (ms: number) => now += ms, state };
}

Deno.test("an iterator carries its reader, taken off before DynamoDB Local sees it", async () => {
  const stream = served();
  const first = await stream.iterator();
  assert.deepEqual(unmarkIterator(first), { iterator: real("shardId-1"), reader: 1 });
  const { status, body } = await stream.read(first);
  assert.equal(status, 200);
  assert.deepEqual(stream.seen, [real("shardId-1")]);
  // The next iterator goes on with the same reader.
  assert.equal(body.NextShardIterator, markIterator(real("shardId-1"), 1));
  assert.equal(unmarkIterator(await stream.iterator()).reader, 2);
  assert.deepEqual(unmarkIterator("no mark"), { iterator: "no mark" });
});

Deno.test("a third reader of a shard at once is throttled, and so are the other two while it reads", async () => {
  assert.equal(MAX_READERS, 2);
  const stream = served();
  const [a, b, c] = await threeReaders(stream);
  assert.equal((await stream.read(a)).status, 200);
  assert.equal((await stream.read(b)).status, 200);
  const third = await stream.read(c);
  assert.equal(third.status, 400);
  assert.equal(third.body.__type, "com.amazonaws.dynamodb.v20120810#LimitExceededException");
  assert.match(third.body.message, /more than 2 processes are reading from the same streams shard/);
  assert.equal((await stream.read(a)).status, 400, "the shard's reads, whoever asks");
  assert.equal(stream.seen.length, 2, "no throttled read reached DynamoDB Local");
  // Once the third has stopped reading for a second, the two read again.
  stream.advance(READING_MS + 1);
  assert.equal((await stream.read(a)).status, 200);
  assert.equal((await stream.read(b)).status, 200);
});

Deno.test("readers of different shards, and iterators without a mark, are not counted together", async () => {
  const stream = served();
  const [a, b] = [await stream.iterator("shardId-1"), await stream.iterator("shardId-1")];
  const other = await stream.iterator("shardId-2");
  assert.equal((await stream.read(a)).status, 200);
  assert.equal((await stream.read(b)).status, 200);
  assert.equal((await stream.read(other)).status, 200);
  assert.equal((await stream.read(real("shardId-1"))).status, 200, "given before the layer ran");
  // One reader asking again and again is one reader.
  for (let i = 0; i < 5; i++) assert.equal((await stream.read(a)).status, 200);
});

Deno.test("a reader counts as reading for 500 ms after its read, to the millisecond", async () => {
  assert.equal(READING_MS, 500);
  const stream = served();
  const [a, b, c] = await threeReaders(stream);
  assert.equal((await stream.read(a)).status, 200);
  assert.equal((await stream.read(b)).status, 200);
  stream.advance(500);
  assert.equal((await stream.read(c)).status, 400, "a and b still read 500 ms on");
  stream.advance(501);
  assert.equal((await stream.read(c)).status, 200, "501 ms after their last read, they are gone");
});

/** Three iterators of the shard, each a reader of its own. */
async function threeReaders(stream: ReturnType<typeof served>): Promise<string[]> {
  return [await stream.iterator(), await stream.iterator(), await stream.iterator()];
}

Deno.test("the stack's poller reads a shard while its watch is on, though it leaves polls out", async () => {
  const stream = served();
  const [mapping, b, c] = await threeReaders(stream);
  assert.equal((await stream.read(mapping, true)).status, 200);
  stream.advance(MAPPING_READING_MS);
  assert.ok(MAPPING_READING_MS > IDLE_REFRESH_MS, "past the longest it leaves polls out");
  assert.equal((await stream.read(b)).status, 200);
  assert.equal((await stream.read(c)).status, 400, "the poller still reads");
  stream.advance(READING_MS + 1);
  assert.equal((await stream.read(c)).status, 200, "its next poll was due and did not come");
});

Deno.test("the stack's poller reads no longer once its watch is off, or its shard has ended", async () => {
  const stream = served();
  const [mapping, b, c] = await threeReaders(stream);
  assert.equal((await stream.read(mapping, true)).status, 200);
  stream.state.watching = false;
  stream.advance(READING_MS + 1);
  assert.equal((await stream.read(b)).status, 200);
  assert.equal((await stream.read(c)).status, 200, "the poller stopped: two readers");

  const shard = served();
  const [last, d, e] = await threeReaders(shard);
  shard.state.ended = true;
  assert.equal((await shard.read(last, true)).status, 200, "the shard's last read");
  shard.state.ended = false;
  assert.equal((await shard.read(d)).status, 200);
  assert.equal((await shard.read(e)).status, 200, "the poller read the shard to its end");
});

Deno.test("only the proxy's own mark makes a reader the poller", async () => {
  const stream = served();
  const [first, second, b] = await threeReaders(stream);
  assert.equal((await stream.read(first, "forged")).status, 200);
  assert.equal((await stream.read(second, "forged")).status, 200);
  assert.equal((await stream.read(b)).status, 400, "three readers: the mark was not the proxy's");
});

Deno.test("the stack's poller is one reader of a shard, whichever iterator it reads with", async () => {
  const stream = served();
  const [first, second, b] = await threeReaders(stream);
  assert.equal((await stream.read(first, true)).status, 200);
  // A new iterator after an error: the same reader.
  assert.equal((await stream.read(second, true)).status, 200);
  assert.equal((await stream.read(b)).status, 200, "two readers: the poller and b");
});
