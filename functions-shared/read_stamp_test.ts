import assert from "node:assert/strict";
import { NO_DATE_MARGIN_MS, pageStamp } from "./read_stamp.ts";

const at = 1_800_000_000_000;

Deno.test("a page is stamped with its answer's Date less the round trip, whatever this clock says", () => {
  // DynamoDB read the page at 12:00:00.700 on its clock and answered Date 12:00:00; this
  // clock is 3 s ahead, and the exchange took 40 ms.
  const reading = { roundTripMs: 40, serverMs: at };
  assert.equal(pageStamp(at + 3_680, reading).getTime(), at - 40);
  // 3 s behind: the same stamp.
  assert.equal(pageStamp(at - 2_320, reading).getTime(), at - 40);
  // A round trip that came out below zero (a clock stepped back in flight) takes nothing off.
  assert.equal(pageStamp(at, { roundTripMs: -1_966, serverMs: at }).getTime(), at);
});

Deno.test("the stamp is never after the read, on the service's clock, for any place of the read in the exchange", () => {
  // The service read somewhere in [sent, received] (our clock, skewed by `skew`), and its
  // Date is that read's later answer truncated to the second.
  for (const skew of [-5_000, -700, 0, 300, 999, 2_500]) {
    for (const readOffset of [0, 10, 250, 499]) {
      const sentAt = at + 123 + skew;
      const receivedAt = sentAt + 500;
      const readOnService = sentAt - skew + readOffset;
      const answeredOnService = sentAt - skew + 500;
      const serverMs = Math.floor(answeredOnService / 1000) * 1000;
      const stamp = pageStamp(sentAt, { roundTripMs: receivedAt - sentAt, serverMs }).getTime();
      assert.ok(stamp <= readOnService, `skew ${skew}, read at +${readOffset}: ${stamp}`);
      assert.ok(readOnService - stamp < 1_000 + 500, "at most a second and a round trip early");
    }
  }
});

Deno.test("an answer without a Date stamps this clock's time less the margin", () => {
  assert.equal(pageStamp(at, undefined).getTime(), at - NO_DATE_MARGIN_MS);
});
