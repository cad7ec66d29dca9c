import assert from "node:assert/strict";
import { clockSkewProblem, provenSkewMs } from "./clock_skew.ts";

const at = 1_800_000_000_000;

Deno.test("clocks in step prove no skew, whatever the Date's second or the exchange's length", () => {
  // The service read 12:00:00.999 as 12:00:00: its Date is up to a second behind ours.
  assert.equal(
    provenSkewMs({ sentAt: at + 990, receivedAt: at + 999, serverMs: at, resolutionMs: 1000 }),
    0,
  );
  // An exchange of 30 s proves nothing either way within it.
  assert.equal(
    provenSkewMs({
      sentAt: at,
      receivedAt: at + 30_000,
      serverMs: at + 15_000,
      resolutionMs: 1000,
    }),
    0,
  );
});

Deno.test("a skew is counted only as far as the exchange proves it", () => {
  // Our clock 5 s ahead: the Date reads 5 s earlier than the request left, less its second.
  assert.equal(
    provenSkewMs({ sentAt: at + 5_000, receivedAt: at + 5_020, serverMs: at, resolutionMs: 1000 }),
    4_000,
  );
  // Our clock 5 s behind: the Date is 5 s later than the answer came.
  assert.equal(
    provenSkewMs({ sentAt: at - 5_030, receivedAt: at - 5_000, serverMs: at, resolutionMs: 1000 }),
    -5_000,
  );
  // Postgres's clock to the millisecond.
  assert.equal(
    provenSkewMs({ sentAt: at, receivedAt: at + 4, serverMs: at - 700, resolutionMs: 1 }),
    699,
  );
});

Deno.test("the problem names the service, the direction and the proven amount, past the tolerance only", () => {
  const ahead = { sentAt: at + 3_500, receivedAt: at + 3_520, serverMs: at, resolutionMs: 1000 };
  assert.equal(clockSkewProblem(ahead, "DynamoDB", 5_000), undefined);
  assert.match(
    clockSkewProblem(ahead, "DynamoDB", 1_000)!,
    /^this function's clock is at least 2\.5 s ahead of DynamoDB's \(more than the 1000 ms/,
  );
  const behind = { sentAt: at - 3_020, receivedAt: at - 3_000, serverMs: at, resolutionMs: 1 };
  assert.match(clockSkewProblem(behind, "Postgres", 500)!, /at least 3\.0 s behind Postgres's/);
});
