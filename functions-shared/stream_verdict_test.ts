import assert from "node:assert/strict";
import { judgeTable, type PreviousCheck } from "./stream_verdict.ts";
import type { ShardFinding } from "./stream_shard.ts";

// The verdicts that need no shard read; those on a shard's findings are in
// stream_check_test.ts, beside the reading that makes them.
const HOUR = 3600_000;
const NOW = Date.parse("2026-11-28T12:00:00Z");
const timing = { now: NOW, retentionMs: 24 * HOUR, maxIntervalMs: 3 * HOUR, lagLimitMs: 2 * HOUR };
const ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/1";

Deno.test("a run more than the allowed gap after the last one cannot vouch for it", () => {
  const before: PreviousCheck = { streamArn: ARN, checkedAt: NOW - 4 * HOUR, shards: {} };
  const verdict = judgeTable("t", ARN, [], [], before, timing);
  assert.match(verdict.problem!, /previous check ran at 2026-11-28T08:00:00.000Z, more than 3 h/);
  assert.equal(verdict.coversUntil, NOW);
});

Deno.test("a replaced stream, and a shard gone with its frontier unapplied, are problems", () => {
  const before: PreviousCheck = { streamArn: "old-arn", checkedAt: NOW - HOUR, shards: {} };
  const gone = [{
    shardId: "s0",
    frontier: { seq: "7", createdAt: NOW - 30 * HOUR },
    applied: false,
  }];
  const verdict = judgeTable("t", ARN, [], gone, before, timing);
  assert.match(verdict.problem!, /stream was replaced since the last check \(old-arn →/);
  assert.match(verdict.problem!, /shard s0: gone from the stream with record 7 .* never applied/);
  const fine = judgeTable("t", ARN, [], [{ ...gone[0], applied: true }], undefined, timing);
  assert.equal(fine.problem, undefined);
});

Deno.test("a stream that came back after the last check found none is a problem: no stream captured the gap", () => {
  const before: PreviousCheck = { streamArn: null, checkedAt: NOW - HOUR, shards: {} };
  const verdict = judgeTable("t", ARN, [], [], before, timing);
  assert.match(
    verdict.problem!,
    /the table had no stream at the last check \(2026-11-28T11:00:00.000Z\); changes made before .* began were captured by no stream/,
  );
  assert.equal(verdict.coversUntil, NOW);
});

Deno.test("a frontier past the mapping's maximum record age, with a record after it applied, was passed over", () => {
  const before: PreviousCheck = { streamArn: ARN, checkedAt: NOW - HOUR, shards: {} };
  const finding = (minutesAgo: number, appliedAfter: boolean): ShardFinding => ({
    shardId: "s1",
    state: {
      through: "6",
      frontier: { seq: "7", created_at: new Date(NOW - minutesAgo * 60_000).toISOString() },
    },
    readBefore: new Date(NOW - HOUR).toISOString(),
    sawApplied: appliedAfter,
    ...(appliedAfter ? { appliedAfterFrontier: true } : {}),
  });
  const passed = judgeTable("t", ARN, [finding(85, true)], [], before, timing);
  assert.match(
    passed.problem!,
    /shard s1: record 7 \(created 2026-11-28T10:35:00.000Z\) was passed over: records after it were applied, and it is older than the mapping's maximum record age \(1 h\)/,
  );
  assert.equal(passed.coversUntil, NOW - 85 * 60_000, "a backfill since the record heals it");
  const retrying = judgeTable("t", ARN, [finding(75, true)], [], before, timing);
  assert.equal(retrying.problem, undefined, "its batch may still be retried");
  const waiting = judgeTable("t", ARN, [finding(85, false)], [], before, timing);
  assert.equal(waiting.problem, undefined, "nothing after it applied: the undelivered rule's");
  // Past the at-risk line, at risk: records given up behind it (never the frontier) need a
  // backfill since that line, not only one since the frontier.
  const late = judgeTable("t", ARN, [finding(21.5 * 60, true)], [], before, timing);
  assert.match(late.problem!, /may be trimmed before the next check/);
  assert.equal(late.coversUntil, NOW - (24 - 3) * HOUR + 5 * 60_000);
});
