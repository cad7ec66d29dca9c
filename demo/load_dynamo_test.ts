import assert from "node:assert/strict";
import type {
  BatchWriteItemCommand,
  BatchWriteItemCommandOutput,
  WriteRequest,
} from "@aws-sdk/client-dynamodb";
import type { PacingDeps } from "../functions-shared/scan_pacing.ts";
import { batchWrite, type BatchWriter, STALL_MS, writeBatch } from "./load_dynamo.ts";

const put = (id: string): WriteRequest => ({ PutRequest: { Item: { id: { S: id } } } });
const error = (name: string, message: string) => Object.assign(new Error(message), { name });
const throttled = () => error("ProvisionedThroughputExceededException", "rate exceeded");

/**
 * A fake DynamoDB that answers each BatchWriteItem with `answer` (given the call's number
 * and its requests): how many of them it writes, or an error to throw. Keeps what it wrote.
 */
function fakeDynamo(answer: (call: number, requests: WriteRequest[]) => number | Error) {
  const written: string[] = [];
  const sent: number[] = [];
  const client: BatchWriter = {
    send(command: BatchWriteItemCommand): Promise<BatchWriteItemCommandOutput> {
      const [[table, requests]] = Object.entries(command.input.RequestItems!);
      sent.push(requests.length);
      const outcome = answer(sent.length, requests);
      if (outcome instanceof Error) return Promise.reject(outcome);
      for (const r of requests.slice(0, outcome)) written.push(r.PutRequest!.Item!.id.S!);
      const left = requests.slice(outcome);
      return Promise.resolve({
        $metadata: {},
        UnprocessedItems: left.length > 0 ? { [table]: left } : {},
      });
    },
  };
  return { client, written, sent };
}

/** A clock that moves only by the waits, at once, noting each; random() is always `r`. */
function pacing(r = 1): PacingDeps & { waits: number[] } {
  const waits: number[] = [];
  let clock = 1_000;
  return {
    now: () => clock,
    sleep: (ms) => {
      waits.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    random: () => r,
    waits,
  };
}

/** The backoff (random() 1) while nothing is written: doubling from 100 ms to 5 s. */
const STALLED_WAITS = [100, 200, 400, 800, 1600, 3200, 5000];

Deno.test("unprocessed requests are sent again until every one is written, none twice", async () => {
  const dynamo = fakeDynamo(() => 2); // two a round, as a table throttled to a rate
  const requests = ["a", "b", "c", "d", "e"].map(put);
  const clock = pacing();
  await writeBatch(dynamo.client, "t", requests, clock);
  assert.deepEqual(dynamo.written, ["a", "b", "c", "d", "e"]);
  assert.deepEqual(dynamo.sent, [5, 3, 1]);
  assert.deepEqual(clock.waits, [50, 50], "progress each round: the shortest backoff");
});

Deno.test("a throttled table that writes some now and then is waited out, however long", async () => {
  // Seven rounds refused whole (none fit), then one request written, over and over.
  const dynamo = fakeDynamo((call) => call % 8 === 0 ? 1 : throttled());
  const clock = pacing();
  await writeBatch(dynamo.client, "t", ["a", "b", "c"].map(put), clock);
  assert.deepEqual(dynamo.written, ["a", "b", "c"]);
  assert.equal(dynamo.sent.length, 24);
  // The backoff doubles while nothing is written (to 5 s), and starts again after.
  assert.deepEqual(clock.waits.slice(0, 9), [...STALLED_WAITS, 50, 100]);
});

Deno.test("a table in deficit that writes nothing for many rounds is waited out for up to a minute", async () => {
  // 15 rounds refused whole: 51.3 s of backoff, less than a minute; then all written.
  const dynamo = fakeDynamo((call) => call <= 15 ? throttled() : 3);
  const clock = pacing();
  await writeBatch(dynamo.client, "t", ["a", "b", "c"].map(put), clock);
  assert.deepEqual(dynamo.written, ["a", "b", "c"]);
  assert.equal(dynamo.sent.length, 16);
  assert.equal(clock.waits.reduce((a, b) => a + b), 51_300);
});

Deno.test("a minute without a round that writes gives up, naming the table, what is left and its first, the time and the cause", async () => {
  assert.equal(STALL_MS, 60_000);
  // Rounds at 0, 0.1, 0.3 ... 6.3 s, then every 5 s: the 18th starts 61.3 s in.
  const refused = fakeDynamo(() => throttled());
  await assert.rejects(
    writeBatch(refused.client, "t", ["a", "b", "c"].map(put), pacing()),
    {
      message: "BatchWriteItem on t: 3 requests still unwritten (first " +
        '{"id":{"S":"a"}}) after 61.3 s without a round ' +
        "that wrote one (18 rounds in a row; the last: " +
        "ProvisionedThroughputExceededException: rate exceeded)",
    },
  );
  assert.equal(refused.sent.length, 18);
  // The minute counts from the last round that wrote something (50 ms after it, the next).
  const unprocessed = fakeDynamo((call) => call === 1 ? 1 : 0);
  await assert.rejects(
    writeBatch(unprocessed.client, "t", ["a", "b", "c"].map(put), pacing()),
    {
      message: "BatchWriteItem on t: 2 requests still unwritten (first " +
        '{"id":{"S":"b"}}) after 61.4 s without a round ' +
        "that wrote one (18 rounds in a row; the last: 2 of 2 left unprocessed)",
    },
  );
  assert.deepEqual(unprocessed.written, ["a"]);
  assert.equal(unprocessed.sent.length, 19);
});

Deno.test("a 5xx is sent again; an error no retry cures is thrown at once, naming the table", async () => {
  const flaky = fakeDynamo((call) => call === 1 ? error("InternalServerError", "boom") : 1);
  await writeBatch(flaky.client, "t", [put("a")], pacing());
  assert.deepEqual(flaky.written, ["a"]);
  const invalid = fakeDynamo(() =>
    error("ValidationException", "Provided list of item keys contains duplicates")
  );
  await assert.rejects(
    writeBatch(invalid.client, "visitors", [put("a"), put("a")], pacing()),
    (thrown: Error) => {
      assert.equal(
        thrown.message,
        'BatchWriteItem on visitors (first {"id":{"S":"a"}}): ValidationException: ' +
          "Provided list of item keys contains duplicates",
      );
      assert.equal((thrown.cause as Error).name, "ValidationException");
      return true;
    },
  );
  assert.equal(invalid.sent.length, 1);
});

Deno.test("batchWrite writes every item once, 25 a request, through unprocessed rounds", async () => {
  // Each first send of a batch leaves its last request unprocessed.
  const dynamo = fakeDynamo((_, requests) => requests.length > 1 ? requests.length - 1 : 1);
  const items = Array.from({ length: 60 }, (_, i) => put(`i${i}`).PutRequest!.Item!);
  const progress: number[] = [];
  const written = await batchWrite(dynamo.client, "t", items, 2, (n) => progress.push(n), pacing());
  assert.equal(written, 60);
  assert.deepEqual(
    [...dynamo.written].sort(),
    items.map((i) => i.id.S!).sort(),
    "each once",
  );
  assert.deepEqual(dynamo.sent.filter((n) => n > 1).sort(), [10, 25, 25]);
  assert.equal(Math.max(...progress), 60);
});
