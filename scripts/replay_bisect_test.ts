import assert from "node:assert/strict";
import type { StreamRecord } from "../lambda/stream_records.ts";
import type { DeliveryOutcome } from "../lambda/webhook_delivery.ts";
import { deliverBisecting } from "./replay_bisect.ts";

const record = (seq: number) => ({ dynamodb: { SequenceNumber: String(seq) } }) as StreamRecord;
const seqs = (records: StreamRecord[]) => records.map((r) => Number(r.dynamodb!.SequenceNumber));

/** A webhook that refuses any body holding a record of `poison`, else says `later` to `busy`. */
function webhook(poison: number[], busy: number[] = []) {
  const sent: number[][] = [];
  const send = (records: StreamRecord[]): Promise<DeliveryOutcome> => {
    const s = seqs(records);
    sent.push(s);
    if (s.some((n) => poison.includes(n))) return Promise.resolve("refused");
    return Promise.resolve(s.some((n) => busy.includes(n)) ? "later" : "delivered");
  };
  return { sent, send };
}

Deno.test("a refused body is bisected down to its refused records; every other record is delivered, in order", async () => {
  const hook = webhook([3, 7]);
  const bodies = [[1, 2, 3, 4, 5, 6, 7, 8].map(record), [9, 10].map(record)];
  const result = await deliverBisecting(bodies, hook.send);
  assert.equal(result.delivered, 8);
  assert.deepEqual(seqs(result.refused), [3, 7]);
  assert.equal(result.stoppedAt, undefined);
  const deliveredInOrder = hook.sent.filter((s) => !s.some((n) => n === 3 || n === 7)).flat();
  assert.deepEqual(deliveredInOrder, [1, 2, 4, 5, 6, 8, 9, 10]);
});

Deno.test("a body the webhook cannot take now stops the replay there, nothing after it sent", async () => {
  const hook = webhook([2], [5]);
  const result = await deliverBisecting(
    [[1, 2, 3, 4, 5, 6].map(record), [7].map(record)],
    hook.send,
  );
  assert.deepEqual(seqs(result.refused), [2]);
  assert.equal(result.stoppedAt?.dynamodb?.SequenceNumber, "4", "the body [4, 5, 6] that held 5");
  assert.equal(result.delivered, 2, "1 and 3");
  assert.ok(!hook.sent.flat().includes(7), "the next body was never sent");
});
