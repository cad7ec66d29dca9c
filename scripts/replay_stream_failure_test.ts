import assert from "node:assert/strict";
import type { StreamRecord } from "../lambda/stream_records.ts";
import { readRange } from "./replay_stream_failure.ts";

const record = (seq: number) => ({ dynamodb: { SequenceNumber: String(seq) } }) as StreamRecord;

/** A shard read page by page: each page's records, the iterators "i0", "i1", ... */
function pages(...contents: number[][]) {
  return (iterator: string) => {
    const at = Number(iterator.slice(1));
    return Promise.resolve({
      records: (contents[at] ?? []).map(record),
      next: at + 1 < contents.length ? `i${at + 1}` : undefined,
    });
  };
}
const seqs = (records: StreamRecord[]) => records.map((r) => Number(r.dynamodb!.SequenceNumber));

Deno.test("a range is read past empty pages, to its end and no further", async () => {
  const read = await readRange(pages([1, 2], [], [3, 4, 5], [6]), "i0", "5");
  assert.deepEqual(seqs(read.records), [1, 2, 3, 4, 5]);
  assert.equal(read.reached, true);
});

Deno.test("a range whose end the stream never gives is not reached, after so many empty pages", async () => {
  const read = await readRange(pages([1, 2], [], [], [], [9]), "i0", "5", 3);
  assert.deepEqual(seqs(read.records), [1, 2]);
  assert.equal(read.reached, false);
  assert.equal(read.emptyPages, 3);
  const closed = await readRange(pages([1, 2]), "i0", "5");
  assert.equal(closed.reached, false, "a shard that ends before the range does");
});
