import assert from "node:assert/strict";
import { checkShard, iso } from "./stream_check.ts";
import type { HeldRecord, Position, ShardState, StreamReader } from "./stream_shard.ts";
import { judgeTable, type PreviousCheck, waitingRecord } from "./stream_verdict.ts";
import { READ_MARGIN_MS } from "./stream_timing.ts";

const HOUR = 3600_000;
const NOW = Date.parse("2026-11-28T12:00:00Z");
const timing = { now: NOW, retentionMs: 24 * HOUR, maxIntervalMs: 3 * HOUR, lagLimitMs: 2 * HOUR };
const ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/1";

/**
 * A shard: its records (seq, age in hours), how many are trimmed, whether it is closed, and
 * how many empty pages a read from its oldest record gets before the first record.
 */
interface FakeShard {
  records: HeldRecord[];
  trimmed: number;
  closed: boolean;
  emptyFirst?: number;
}

function shard(ages: number[], trimmed = 0, closed = false, firstSeq = 100): FakeShard {
  return {
    records: ages.map((h, i) => ({ seq: String(firstSeq + i), createdAt: NOW - h * HOUR })),
    trimmed,
    closed,
  };
}

/** A stream reader over fake shards, two records a page; remembers the positions asked. */
function fakeReader(shards: Record<string, FakeShard>) {
  const asked: Position[] = [];
  const reader: StreamReader = {
    shards: () =>
      Promise.resolve(Object.entries(shards).map(([id, s]) => ({ id, closed: s.closed }))),
    iterator(shardId, position) {
      asked.push(position);
      const s = shards[shardId];
      if (position === "oldest") {
        return Promise.resolve(`${shardId}|${s.trimmed}|${s.emptyFirst ?? 0}`);
      }
      const seq = "at" in position ? position.at : position.after;
      const index = s.records.findIndex((r) => r.seq === seq);
      if (index < s.trimmed) return Promise.resolve("trimmed");
      return Promise.resolve(`${shardId}|${"at" in position ? index : index + 1}`);
    },
    read(iterator) {
      const [shardId, at, empties] = iterator.split("|");
      const s = shards[shardId];
      const from = Number(at);
      if (Number(empties) > 0) {
        return Promise.resolve({ records: [], next: `${shardId}|${at}|${Number(empties) - 1}` });
      }
      const records = s.records.slice(from, from + 2);
      const end = from + records.length;
      const next = s.closed && end >= s.records.length ? undefined : `${shardId}|${end}`;
      return Promise.resolve({ records, next });
    },
  };
  return { reader, asked };
}

const appliedOf = (seqs: string[]) => (asked: string[]) =>
  Promise.resolve(new Set(asked.filter((s) => seqs.includes(s))));

Deno.test("every record applied: no frontier, read through to the last record, no problem", async () => {
  const { reader } = fakeReader({ s1: shard([5, 4, 3], 0, true) });
  const finding = await checkShard("s1", undefined, reader, appliedOf(["100", "101", "102"]));
  assert.deepEqual(finding.state, { through: "102", throughAt: iso(NOW - 3 * HOUR), done: true });
  const verdict = judgeTable("t", ARN, [finding], [], undefined, timing);
  assert.equal(verdict.problem, undefined);
});

Deno.test("the first record not applied is the frontier; a young one is no problem", async () => {
  const { reader } = fakeReader({ s1: shard([5, 4, 3]) });
  const finding = await checkShard("s1", undefined, reader, appliedOf(["100"]));
  assert.equal(finding.state.through, "100");
  assert.equal(finding.state.frontier?.seq, "101");
  assert.equal(judgeTable("t", ARN, [finding], [], undefined, timing).problem, undefined);
});

Deno.test("a frontier trimmed before it was applied is a lost record, named with its shard", async () => {
  const previous: ShardState = {
    through: "100",
    frontier: { seq: "101", created_at: new Date(NOW - 25 * HOUR).toISOString() },
  };
  const { reader } = fakeReader({ s1: shard([26, 25, 2], 2) });
  const finding = await checkShard("s1", previous, reader, appliedOf(["100"]));
  assert.equal(finding.lost?.seq, "101");
  const before: PreviousCheck = { streamArn: ARN, checkedAt: NOW - HOUR, shards: { s1: previous } };
  const verdict = judgeTable("firespring_segments", ARN, [finding], [], before, timing);
  assert.match(
    verdict.problem!,
    /^firespring_segments: lost-record check of arn:.*: shard s1: record 101 \(created 2026-11-27T11:00:00.000Z\) was trimmed from the stream before the webhook applied it; the shard now starts at 102$/,
  );
  assert.equal(verdict.coversUntil, NOW - 25 * HOUR);
  assert.equal(verdict.shards.s1.frontier?.seq, "102", "the new frontier is kept");
});

Deno.test("a frontier trimmed between its iterator and its read is lost as well; a read from the oldest goes on", async () => {
  // The iterator at the frontier is given, then the 24 hours pass before GetRecords: AWS
  // answers TrimmedDataAccessException to the read (the reader: "trimmed").
  const previous: ShardState = {
    through: "100",
    frontier: { seq: "101", created_at: new Date(NOW - 24 * HOUR).toISOString() },
  };
  const { reader } = fakeReader({ s1: shard([25, 24, 2], 2) });
  let trimmedOnce = false;
  const racing: StreamReader = {
    ...reader,
    read: (iterator) => {
      if (!trimmedOnce && iterator === "s1|1") {
        trimmedOnce = true;
        return Promise.resolve("trimmed");
      }
      return reader.read(iterator);
    },
  };
  // The frontier's own iterator is still given (the fake's trim says 2, its index is 1:
  // ask it "at" a position the fake holds, as AWS did a moment before).
  racing.iterator = (shardId, position) =>
    position !== "oldest" && "at" in position
      ? Promise.resolve(`${shardId}|1`)
      : reader.iterator(shardId, position);
  const finding = await checkShard("s1", previous, racing, appliedOf(["100"]));
  assert.equal(finding.lost?.seq, "101", "gone unapplied, as when its iterator is refused");
  assert.equal(finding.state.frontier?.seq, "102", "read on from the oldest held");
  // Applied before the trim: no loss, and the check goes on.
  trimmedOnce = false;
  const fine = await checkShard("s1", previous, racing, appliedOf(["100", "101"]));
  assert.equal(fine.lost, undefined);
  assert.equal(fine.state.frontier?.seq, "102");
});

Deno.test("a trim met past the frontier's own read is no loss of the frontier", async () => {
  // The frontier's read answers an empty page (the frontier not yet there to read); the
  // page after it is trimmed. The frontier was read fine: only a trim at it loses it.
  const previous: ShardState = {
    through: "100",
    frontier: { seq: "101", created_at: new Date(NOW - 20 * HOUR).toISOString() },
  };
  const { reader } = fakeReader({ s1: shard([21, 20, 2]) });
  const reads: string[] = [];
  const later: StreamReader = {
    ...reader,
    read: (iterator) => {
      reads.push(iterator);
      if (iterator === "s1|1") return Promise.resolve({ records: [], next: "s1|past" });
      if (iterator === "s1|past") return Promise.resolve("trimmed");
      return reader.read(iterator);
    },
  };
  const finding = await checkShard("s1", previous, later, appliedOf(["100"]));
  assert.deepEqual(reads.slice(0, 3), ["s1|1", "s1|past", "s1|0|0"], "on from the oldest");
  assert.equal(finding.lost, undefined);
  assert.equal(finding.state.frontier?.seq, "101");
});

Deno.test("a read trimmed twice in a row fails the shard's check, naming the shard", async () => {
  const { reader } = fakeReader({ s3: shard([5]) });
  const trimmed: StreamReader = { ...reader, read: () => Promise.resolve("trimmed") };
  await assert.rejects(checkShard("s3", undefined, trimmed, appliedOf([])), {
    name: "TrimmedDataAccessException",
    message: "shard s3: GetRecords: trimmed twice in a row",
  });
});

Deno.test("a frontier applied before it was trimmed is no problem", async () => {
  const previous: ShardState = {
    frontier: { seq: "101", created_at: new Date(NOW - 25 * HOUR).toISOString() },
  };
  const { reader } = fakeReader({ s1: shard([26, 25, 2], 2) });
  const finding = await checkShard("s1", previous, reader, appliedOf(["100", "101", "102"]));
  assert.equal(finding.lost, undefined);
  assert.equal(finding.state.through, "102");
});

Deno.test("an old frontier is at risk: the table is stale before anything is lost", async () => {
  const { reader } = fakeReader({ s1: shard([22, 1]) });
  const finding = await checkShard("s1", undefined, reader, appliedOf([]));
  const verdict = judgeTable("t", ARN, [finding], [], undefined, timing);
  assert.match(verdict.problem!, /shard s1: record 100 .* is not applied yet and may be trimmed/);
  assert.equal(verdict.coversUntil, NOW - 21 * HOUR + READ_MARGIN_MS);
});

Deno.test("reads go on from where the last run stopped; a closed shard read whole is not read again", async () => {
  const { reader, asked } = fakeReader({ s1: shard([5, 4, 3, 2]) });
  await checkShard("s1", { through: "101" }, reader, appliedOf(["102", "103"]));
  assert.deepEqual(asked, [{ after: "101" }]);
  const done = await checkShard("s1", { through: "103", done: true }, reader, appliedOf([]));
  assert.deepEqual(done.state, { through: "103", done: true });
  assert.equal(asked.length, 1);
});

Deno.test("a shard longer than the page cap is incomplete; an old one is a problem", async () => {
  const { reader } = fakeReader({ s1: shard([23, 22.5, 22.2, 22.1, 1]) });
  const all = ["100", "101", "102", "103", "104"];
  const finding = await checkShard("s1", undefined, reader, appliedOf(all), { maxPages: 2 });
  assert.ok(finding.incomplete);
  const verdict = judgeTable("t", ARN, [finding], [], undefined, timing);
  assert.match(
    verdict.problem!,
    /shard s1: could not be read as far as its first unapplied record/,
  );
  // A backfill since the at-risk line heals what this run could not read: not only one
  // queued now (a new one every hour while the check catches up).
  assert.equal(verdict.coversUntil, NOW - 21 * HOUR + READ_MARGIN_MS);
});

/** A budget spent after `pages` pages; remembers the records of each page counted. */
function pagesBudget(pages: number) {
  const counted: number[] = [];
  return {
    counted,
    page: (n: number) => void counted.push(n),
    shard: () => {},
    spent: () => counted.length >= pages,
  };
}

Deno.test("a spent budget stops the read before its next page and keeps how far it got", async () => {
  const { reader } = fakeReader({ s1: shard([23, 22.5, 22.2, 22.1, 1]) });
  const all = ["100", "101", "102", "103", "104"];
  const budget = pagesBudget(1);
  const finding = await checkShard("s1", undefined, reader, appliedOf(all), { budget });
  assert.deepEqual(budget.counted, [2], "one page of two records, counted");
  assert.deepEqual(finding.incomplete, { lastCreatedAt: NOW - 22.5 * HOUR, cause: "budget" });
  assert.equal(finding.state.through, "101");
  const verdict = judgeTable("t", ARN, [finding], [], undefined, timing);
  assert.match(
    verdict.problem!,
    /shard s1: could not be read .*the run's budget was spent; stopped after 101/,
  );
  // The next run reads on from there, and with its budget to the end: no problem.
  const { reader: again, asked } = fakeReader({ s1: shard([23, 22.5, 22.2, 22.1, 1]) });
  const next = await checkShard("s1", finding.state, again, appliedOf(all), {
    budget: pagesBudget(5),
  });
  assert.deepEqual(asked, [{ after: "101" }]);
  assert.equal(next.incomplete, undefined);
  assert.equal(next.state.through, "104");
});

Deno.test("a budget spent among a shard's first empty pages reads on to its first record; each page is counted with its bytes", async () => {
  const { reader } = fakeReader({ s1: { ...shard([3, 2, 1]), emptyFirst: 2 } });
  const sized: StreamReader = {
    ...reader,
    read: async (iterator) => {
      const page = await reader.read(iterator);
      return page === "trimmed" ? page : { ...page, bytes: 1_000 };
    },
  };
  const counted: [number, number][] = [];
  const finding = await checkShard("s1", undefined, sized, appliedOf(["100", "101", "102"]), {
    budget: {
      page: (records, bytes) => void counted.push([records, bytes]),
      shard: () => {},
      spent: () => counted.length > 0,
    },
  });
  assert.deepEqual(counted, [[0, 1_000], [0, 1_000], [2, 1_000]]);
  assert.equal(finding.state.through, "101");
  assert.deepEqual(finding.incomplete, { lastCreatedAt: NOW - 2 * HOUR, cause: "budget" });
});

Deno.test("a budget spent before a shard leaves it unread with its state; young records are no problem", async () => {
  const { reader, asked } = fakeReader({ s1: shard([3, 2, 1]) });
  const previous = { through: "100", readAt: new Date(NOW - HOUR).toISOString() };
  const spent = { page: () => {}, shard: () => {}, spent: () => true };
  const finding = await checkShard("s1", previous, reader, appliedOf([]), { budget: spent });
  assert.deepEqual(finding, { shardId: "s1", state: previous, unread: true });
  assert.deepEqual(asked, [], "nothing asked of the stream");
  // The first page read is never cut short: a stop comes only after a record was seen.
  const { reader: fresh } = fakeReader({ s1: shard([3, 2, 1]) });
  const once = pagesBudget(0);
  const started = await checkShard("s1", undefined, fresh, appliedOf(["100", "101", "102"]), {
    budget: { page: once.page, shard: () => {}, spent: () => once.counted.length > 0 },
  });
  assert.equal(started.state.through, "101");
  assert.equal(started.incomplete?.cause, "budget");
  const verdict = judgeTable(
    "t",
    ARN,
    [finding, { ...started, shardId: "s2" }],
    [],
    undefined,
    timing,
  );
  assert.equal(verdict.problem, undefined);
});

Deno.test("reads of a shard more than the allowed gap apart are unwatched, read at this check or not; a waiting frontier unread is not asked about", () => {
  const frontier = { seq: "100", created_at: new Date(NOW - 2.5 * HOUR).toISOString() };
  const lastRead = (hours: number) => new Date(NOW - hours * HOUR).toISOString();
  const unread = (hours: number) => ({
    shardId: "s1",
    state: { frontier, readAt: lastRead(hours) },
    unread: true,
    readBefore: lastRead(hours),
  });
  const previous: PreviousCheck = {
    streamArn: ARN,
    checkedAt: NOW - HOUR,
    shards: { s1: { frontier } },
  };
  assert.equal(waitingRecord(ARN, [unread(1)], previous, timing), undefined);
  assert.equal(judgeTable("t", ARN, [unread(2.9)], [], previous, timing).problem, undefined);
  const late = judgeTable("t", ARN, [unread(3.1)], [], previous, timing);
  assert.match(
    late.problem!,
    /shard s1: not read at this check, last read at 2026-11-28T08:54:00.000Z, more than 3 h ago: records the stream trimmed meanwhile cannot be vouched for/,
  );
  // A backfill since the at-risk line heals what may be trimmed before the next run: not
  // a new one queued by every run while the shard waits.
  assert.equal(late.coversUntil, NOW - 21 * HOUR + READ_MARGIN_MS);
  // Read now, 3.5 h after its last read (the table's runs in between left it unread):
  // what was trimmed meanwhile was not seen either.
  const readLate = { shardId: "s1", state: { through: "100" }, readBefore: lastRead(3.5) };
  assert.match(
    judgeTable("t", ARN, [readLate], [], previous, timing).problem!,
    /shard s1: read at this check, last read at 2026-11-28T08:30:00.000Z, more than 3 h ago/,
  );
  // Read whole now, after such a gap: what was trimmed meanwhile was not seen either.
  const doneNow = { ...readLate, state: { through: "100", done: true } };
  assert.match(judgeTable("t", ARN, [doneNow], [], previous, timing).problem!, /shard s1: read/);
});

/**
 * The verdict on shard s1 of `ages`, of which `applied` were, the last run having seen
 * `seen`; the webhook's notes say `appliedSince` when asked (and the test says whether they
 * were asked: only for a record that waits).
 */
async function waiting(
  ages: number[],
  applied: string[],
  seen: ShardState | undefined,
  { appliedSince = false, streamBefore = ARN } = {},
) {
  const { reader } = fakeReader({ s1: shard(ages) });
  const finding = await checkShard("s1", seen, reader, appliedOf(applied));
  const previous: PreviousCheck = {
    streamArn: streamBefore,
    checkedAt: NOW - HOUR,
    shards: seen ? { s1: seen } : {},
  };
  const record = waitingRecord(ARN, [finding], previous, timing);
  const verdict = judgeTable(
    "firespring_actions",
    ARN,
    [finding],
    [],
    previous,
    timing,
    record && { record, appliedSince },
  );
  return { ...verdict, asked: record !== undefined, askSince: record?.askSince };
}
const frontierAt = (seq: string, hours: number): ShardState => ({
  frontier: { seq, created_at: new Date(NOW - hours * HOUR).toISOString() },
});

Deno.test("a record waiting past the lag limit, seen by the last check, nothing of the stream applied since: a problem", async () => {
  // A stream never delivered (a replaced stream, its mapping not made yet), records
  // waiting after the oldest.
  const never = await waiting([3, 2.5, 1], [], frontierAt("100", 3));
  assert.match(
    never.problem!,
    /^firespring_actions: lost-record check of arn:.*: record 100 of shard s1 \(created 2026-11-28T09:00:00.000Z\) was waiting at the last check too, and no record of the stream has been applied since: nothing delivers this stream \(is the Lambda's event source mapping made for it, and enabled\? A mapping never follows a new stream: after a stream is replaced, terraform apply makes one for it\. On a quiet table, the mapping may have given that record up to its on-failure queue: see the dead-letter alarm\)$/,
  );
  // What waited until the lag line: a backfill since then heals it (one each 2 h while
  // nothing delivers the stream).
  assert.equal(never.coversUntil, NOW - 2 * HOUR);
  // The notes are asked about since the last check, which already saw it waiting: a batch
  // committed just after the record was made must not count for ever.
  assert.equal(never.askSince, NOW - HOUR);
  // A stream delivered before, its mapping disabled since: caught at 2 h, not 21.
  const stopped = await waiting([5, 3, 1], ["100"], { through: "100", ...frontierAt("101", 3) });
  assert.match(stopped.problem!, /record 101 of shard s1 .* no record of the stream has been/);
  // Nothing after it (a quiet table, or a record given up to the on-failure queue): one
  // backfill since the record heals it, not one each 2 h.
  const alone = await waiting([3], [], frontierAt("100", 3));
  assert.match(alone.problem!, /nothing delivers this stream/);
  assert.equal(alone.coversUntil, NOW - 3 * HOUR);
});

Deno.test("a last run seconds ago (a run handing on) does not shrink what the notes are asked about below an hour", async () => {
  const previous: PreviousCheck = {
    streamArn: ARN,
    checkedAt: NOW - 10_000,
    shards: { s1: frontierAt("100", 3) },
  };
  const { reader } = fakeReader({ s1: shard([3, 2.5]) });
  const finding = await checkShard("s1", previous.shards.s1, reader, appliedOf([]));
  // A stream delivered with a lag may apply nothing in ten seconds; in an hour, a mapping
  // that delivers applies something or gives the record up.
  assert.equal(waitingRecord(ARN, [finding], previous, timing)!.askSince, NOW - HOUR);
});

Deno.test("the oldest waiting record of all shards is the one named; another shard's waiting makes it more", async () => {
  const previous: PreviousCheck = {
    streamArn: ARN,
    checkedAt: NOW - HOUR,
    shards: { s1: frontierAt("100", 3), s2: frontierAt("200", 4) },
  };
  const { reader } = fakeReader({ s1: shard([3]), s2: shard([4], 0, false, 200) });
  const findings = [
    await checkShard("s1", previous.shards.s1, reader, appliedOf([])),
    await checkShard("s2", previous.shards.s2, reader, appliedOf([])),
  ];
  const record = waitingRecord(ARN, findings, previous, timing)!;
  assert.deepEqual([record.shardId, record.seq, record.more], ["s2", "200", true]);
  const verdict = judgeTable("t", ARN, findings, [], previous, timing, {
    record,
    appliedSince: false,
  });
  assert.match(verdict.problem!, /record 200 of shard s2/);
  assert.equal(verdict.coversUntil, NOW - 2 * HOUR, "each shard's one record: more than one");
});

Deno.test("a delivered stream, a young record, a first look or a new stream is not undelivered", async () => {
  // Records applied since the waiting one: the mapping delivers and gave that one up (the
  // on-failure queue), which the at-risk line covers at 21 h.
  const gaveUp = await waiting([5, 3, 1], ["100"], { through: "100", ...frontierAt("101", 3) }, {
    appliedSince: true,
  });
  assert.equal(gaveUp.problem, undefined);
  assert.ok(gaveUp.asked);
  // A record of the frontier's page seen applied: the database is not even asked.
  const firstGivenUp = await waiting([3, 2.5, 1], ["101"], frontierAt("100", 3));
  assert.equal(firstGivenUp.asked, false);
  assert.doesNotMatch(firstGivenUp.problem ?? "", /nothing delivers this stream/);
  // Younger than the lag limit.
  const young = await waiting([1.5, 1], [], frontierAt("100", 1.5));
  assert.deepEqual([young.problem, young.asked], [undefined, false]);
  // The last run saw no such frontier: its first look, or the records came since.
  const first = await waiting([3, 2.5, 1], [], undefined);
  assert.deepEqual([first.problem, first.asked], [undefined, false]);
  // The stream was replaced since the last run: that is its own problem, now.
  const replaced = await waiting([3, 2.5, 1], [], frontierAt("100", 3), {
    streamBefore: "old-arn",
  });
  assert.match(replaced.problem!, /stream was replaced since the last check/);
  assert.doesNotMatch(replaced.problem!, /nothing delivers this stream/);
  assert.equal(replaced.coversUntil, NOW);
});

Deno.test("read from its oldest record, a shard may answer empty pages before its first records", async () => {
  const behind = { ...shard([22, 21, 1]), emptyFirst: 6 };
  const { reader } = fakeReader({ s1: behind });
  const finding = await checkShard("s1", undefined, reader, appliedOf([]));
  assert.equal(finding.state.frontier?.seq, "100", "the records behind the empty pages are read");
  const verdict = judgeTable("t", ARN, [finding], [], undefined, timing);
  assert.match(verdict.problem!, /shard s1: record 100 .* is not applied yet and may be trimmed/);
  // Past its records, three empty pages end an open shard's read.
  const { reader: tail, asked } = fakeReader({ s1: shard([3, 2]) });
  let reads = 0;
  const counted = { ...tail, read: (iterator: string) => (reads++, tail.read(iterator)) };
  const end = await checkShard("s1", { through: "101" }, counted, appliedOf(["100", "101"]));
  assert.deepEqual(end.state, { through: "101" });
  assert.deepEqual(asked, [{ after: "101" }]);
  assert.equal(reads, 3);
});

Deno.test("a closed shard is read to its end, however many empty pages come first; an open one is not", async () => {
  const closed = { ...shard([22, 21], 0, true), emptyFirst: 12 };
  const { reader } = fakeReader({ s1: closed });
  const read = await checkShard("s1", undefined, reader, appliedOf([]), { closed: true });
  assert.equal(read.state.frontier?.seq, "100");
  // The same empty pages before an open shard's records end its read (the documented
  // limit: such a shard is not read past them).
  const open = { ...shard([22, 21]), emptyFirst: 12 };
  const { reader: openReader } = fakeReader({ s1: open });
  const stopped = await checkShard("s1", undefined, openReader, appliedOf([]), { closed: false });
  assert.equal(stopped.state.frontier, undefined);
  // A closed shard of nothing but empty pages stops at the page cap, as incomplete.
  const endless = { ...shard([], 0, true), emptyFirst: 100 };
  const { reader: endlessReader } = fakeReader({ s1: endless });
  const capped = await checkShard("s1", undefined, endlessReader, appliedOf([]), {
    maxPages: 5,
    closed: true,
  });
  assert.ok(capped.incomplete);
});

Deno.test("a frontier just short of 21 h at the check's start is at risk: its read may come later", async () => {
  // 20 h 56 min old when the check starts: its read may come a run's 60 s later, and the
  // next read 3 h after that, past the stream's 24 h. The read margin puts it at risk now.
  const { reader } = fakeReader({ s1: shard([20 + 56 / 60, 1]) });
  const finding = await checkShard("s1", undefined, reader, appliedOf([]));
  const verdict = judgeTable("t", ARN, [finding], [], undefined, timing);
  assert.match(verdict.problem!, /shard s1: record 100 .* is not applied yet and may be trimmed/);
  // And one 20 h 50 min old is not yet.
  const { reader: younger } = fakeReader({ s1: shard([20 + 50 / 60, 1]) });
  const young = await checkShard("s1", undefined, younger, appliedOf([]));
  assert.equal(judgeTable("t", ARN, [young], [], undefined, timing).problem, undefined);
});

Deno.test("a shard's read that fails is named by its shard, AWS's name kept", async () => {
  const { reader } = fakeReader({ s7: shard([5, 4]) });
  const failing: StreamReader = {
    ...reader,
    read: () =>
      Promise.reject(
        Object.assign(new Error("GetRecords: Rate exceeded"), { name: "LimitExceededException" }),
      ),
  };
  await assert.rejects(checkShard("s7", undefined, failing, appliedOf([])), {
    name: "LimitExceededException",
    message: "shard s7: GetRecords: Rate exceeded",
  });
});

Deno.test("a closed shard applied through its ending sequence number is done, without a read", async () => {
  const { reader } = fakeReader({ s1: shard([5, 4, 3], 0, true) });
  let reads = 0;
  const counting: StreamReader = {
    ...reader,
    read: (iterator) => {
      reads++;
      return reader.read(iterator);
    },
  };
  const previous: ShardState = { through: "1000000000000000000002" };
  const done = await checkShard("s1", previous, counting, appliedOf([]), {
    closed: true,
    endingSeq: "999999999999999999999",
  });
  assert.deepEqual(done.state, { through: "1000000000000000000002", done: true });
  assert.equal(reads, 0, "compared as numbers: the text of the longer sorts first");
  // Applied through exactly its ending sequence number: done as well, without a read.
  const exactly = await checkShard("s1", { through: "102" }, counting, appliedOf([]), {
    closed: true,
    endingSeq: "102",
  });
  assert.deepEqual(exactly.state, { through: "102", done: true });
  assert.equal(reads, 0, "through the ending sequence number itself");
  // Not yet through it: read as before.
  const short = await checkShard("s1", { through: "100" }, counting, appliedOf(["101", "102"]), {
    closed: true,
    endingSeq: "102",
  });
  assert.ok(reads > 0);
  assert.equal(short.state.done, true);
});

Deno.test("a frontier last on its page: the next page says whether more waits behind it", async () => {
  // Two records a page: 101 ends the first page, 102 begins the next.
  const { reader } = fakeReader({ s1: shard([3, 2, 1]) });
  const waiting = await checkShard("s1", undefined, reader, appliedOf(["100"]));
  assert.equal(waiting.state.frontier?.seq, "101");
  assert.equal(waiting.moreAfterFrontier, true, "102 waits behind it, on the next page");
  const past = await checkShard("s1", undefined, reader, appliedOf(["100", "102"]));
  assert.equal(past.sawApplied, true, "the mapping went on past it");
  // Nothing after it: no more waits.
  const { reader: last } = fakeReader({ s1: shard([3, 2]) });
  const alone = await checkShard("s1", undefined, last, appliedOf(["100"]));
  assert.equal(alone.state.frontier?.seq, "101");
  assert.equal(alone.moreAfterFrontier, false);
});

Deno.test("a record applied after the frontier says the mapping went on past it; one before it does not", async () => {
  // Two records a page: 100 and 101, then 102 (and 103).
  const { reader } = fakeReader({ s1: shard([3, 2, 1]) });
  const before = await checkShard("s1", undefined, reader, appliedOf(["100"]));
  assert.equal(before.state.frontier?.seq, "101");
  assert.equal(before.sawApplied, true);
  assert.equal(before.appliedAfterFrontier, undefined, "100 is before the frontier");
  const nextPage = await checkShard("s1", undefined, reader, appliedOf(["100", "102"]));
  assert.equal(nextPage.appliedAfterFrontier, true, "102, on the page after the frontier's");
  const { reader: four } = fakeReader({ s1: shard([4, 3, 2, 1]) });
  const samePage = await checkShard("s1", undefined, four, appliedOf(["100", "101", "103"]));
  assert.equal(samePage.state.frontier?.seq, "102");
  assert.equal(samePage.appliedAfterFrontier, true, "103, on the frontier's page");
});

Deno.test("past an old frontier the read looks a few pages on for a record the mapping applied after it", async () => {
  // 100 applied; 101 to 107 discarded together (a long outage); 108 applied after them.
  // Two records a page: 108 is four pages past the frontier's.
  const ages = [3, 3, 3, 3, 3, 3, 3, 3, 2, 2];
  const { reader } = fakeReader({ s1: shard(ages) });
  const passedOverBefore = NOW - 1.5 * HOUR;
  const old = await checkShard("s1", undefined, reader, appliedOf(["100", "108"]), {
    passedOverBefore,
  });
  assert.equal(old.state.frontier?.seq, "101");
  assert.equal(old.appliedAfterFrontier, true, "108, found pages past it");
  assert.equal(old.sawApplied, true, "100, on the frontier's page");
  // Applied only pages on, long ago: the undelivered rule still asks whether the stream is
  // delivered now (sawApplied is of the frontier's page and the next only).
  const stopped = await checkShard("s1", undefined, reader, appliedOf(["108"]), {
    passedOverBefore,
  });
  assert.equal(stopped.state.frontier?.seq, "100");
  assert.equal(stopped.appliedAfterFrontier, true);
  assert.equal(stopped.sawApplied, undefined);
  // A young frontier: one page past it, as before (its batch may still be retried).
  const young = await checkShard("s1", undefined, reader, appliedOf(["100", "108"]), {
    passedOverBefore: NOW - 4 * HOUR,
  });
  assert.equal(young.appliedAfterFrontier, undefined);
  assert.equal(young.moreAfterFrontier, true);
  // Past the look's pages: not found (the at-risk line's, later).
  const { reader: long } = fakeReader({ s1: shard([...Array(30).fill(3), 2]) });
  const far = await checkShard("s1", undefined, long, appliedOf(["100", "130"]), {
    passedOverBefore,
  });
  assert.equal(far.appliedAfterFrontier, undefined);
});

Deno.test("two trims with a page read between them are not 'trimmed twice in a row'", async () => {
  // An old shard read near its trim point: the 24 hours pass under one iterator, then,
  // pages later, under another. Each time the read goes on from the oldest record held.
  const { reader } = fakeReader({ s1: shard([23, 23, 22]) });
  const trims = new Set(["s1|1", "s1|2"]);
  const trimming: StreamReader = {
    ...reader,
    read: (iterator) => {
      if (trims.delete(iterator)) return Promise.resolve("trimmed");
      return reader.read(iterator);
    },
  };
  const finding = await checkShard(
    "s1",
    { through: "100" },
    trimming,
    appliedOf(["100", "101", "102"]),
  );
  assert.equal(trims.size, 0, "both trims met");
  assert.equal(finding.state.through, "102", "read through to the last record");
});

Deno.test("a frontier reported passed over is read past at the next run: a record given up after it is found as soon", async () => {
  // 100 given up 10 h ago, 101-103 applied; 104 given up 2 h ago, 105 applied after it.
  const { reader } = fakeReader({ s1: shard([10, 10, 10, 10, 2, 2]) });
  const applied = appliedOf(["101", "102", "103", "105"]);
  const passedOverBefore = NOW - 1.5 * HOUR;
  const first = await checkShard("s1", undefined, reader, applied, { passedOverBefore });
  const firstVerdict = judgeTable("t", ARN, [first], [], undefined, timing);
  assert.match(firstVerdict.problem ?? "", /record 100 \(created .*\) was passed over/);
  assert.equal(firstVerdict.shards.s1.givenUp, true, "reported once, then read past");
  // The next run: 104 is the frontier now, passed over too, and named.
  const next = await checkShard("s1", firstVerdict.shards.s1, reader, applied, {
    passedOverBefore,
  });
  assert.equal(next.state.frontier?.seq, "104");
  assert.equal(next.state.givenUp, undefined, "a new frontier, not yet reported");
  const previous = { streamArn: ARN, checkedAt: NOW - HOUR, shards: firstVerdict.shards };
  const verdict = judgeTable("t", ARN, [next], [], previous, timing);
  assert.match(verdict.problem ?? "", /record 104 \(created .*\) was passed over/);
  assert.doesNotMatch(verdict.problem ?? "", /record 100 /);
  assert.equal(verdict.coversUntil, NOW - 2 * HOUR, "a backfill since 104 heals it");
  // Before the fix the frontier stayed on 100, and 104 went unnamed until 100 was trimmed.
});

/**
 * A closed shard: records 100 and 101, `gap` empty pages, then record 102 and its end.
 * Its iterators are `g|<place>` (0: record 100, 1: 101, 2 + n: the gap's nth empty page,
 * 2 + gap: 102) and expire once `expired` says so.
 */
function gappedShard(
  gap: number,
  expired: (iterator: string) => boolean = () => false,
  hoursOld = [5, 4, 3],
) {
  const records = [100, 101, 102].map((seq, i) => ({
    seq: String(seq),
    createdAt: NOW - hoursOld[i] * HOUR,
  }));
  const asked: Position[] = [];
  let reads = 0;
  const reader: StreamReader = {
    shards: () => Promise.resolve([{ id: "g", closed: true }]),
    iterator(_shardId, position) {
      asked.push(position);
      if (position === "oldest") return Promise.resolve("g|0");
      const seq = "at" in position ? position.at : position.after;
      const index = records.findIndex((r) => r.seq === seq);
      return Promise.resolve(`g|${index === 0 ? ("at" in position ? 0 : 1) : 2}`);
    },
    read(iterator) {
      reads++;
      if (expired(iterator)) {
        return Promise.reject(
          Object.assign(new Error("Iterator expired"), { name: "ExpiredIteratorException" }),
        );
      }
      const place = Number(iterator.split("|")[1]);
      if (place < 2) return Promise.resolve({ records: [records[place]], next: `g|${place + 1}` });
      if (place < 2 + gap) return Promise.resolve({ records: [], next: `g|${place + 1}` });
      return Promise.resolve({ records: [records[2]], next: undefined });
    },
  };
  return { reader, asked, reads: () => reads };
}

Deno.test("a closed shard's read stopped among empty pages keeps its iterator, and the next run within 14 minutes reads on from it", async () => {
  const { reader, asked } = gappedShard(6);
  const applied = appliedOf(["100", "101"]);
  const options = { closed: true, maxPages: 5, now: NOW };
  const first = await checkShard("g", undefined, reader, applied, options);
  assert.equal(first.incomplete?.cause, "pages");
  assert.deepEqual(first.state, {
    through: "101",
    throughAt: iso(NOW - 4 * HOUR),
    resume: { iterator: "g|5", at: "2026-11-28T12:00:00.000Z" },
  });
  // A chain's next run, 2 minutes on: past the empty pages, to record 102 unapplied.
  const second = await checkShard("g", first.state, reader, applied, {
    ...options,
    now: NOW + 2 * 60_000,
  });
  assert.equal(second.state.frontier?.seq, "102");
  assert.equal(second.state.resume, undefined, "nothing kept once past them");
  assert.deepEqual(asked, ["oldest"], "no iterator asked for: the kept one was read on");
  // Past 14 minutes (the next hourly run) the read starts after 101 again, as every run
  // did before, and keeps where it stopped for its chain's next run.
  const hourLater = await checkShard("g", first.state, gappedShard(6).reader, applied, {
    ...options,
    now: NOW + 15 * 60_000,
  });
  assert.equal(hourLater.state.frontier, undefined, "an iterator past 14 minutes is not used");
  assert.equal(hourLater.state.resume?.iterator, "g|7");
  // What a read stopped among empty pages leaves unread is newer than its `through`
  // record, 4 hours old: nothing is at risk of the stream's 24 hours, whether its chain
  // reads on or a run begins again before them.
  for (const finding of [first, hourLater]) {
    assert.equal(judgeTable("t", ARN, [finding], [], undefined, timing).problem, undefined);
  }
});

Deno.test("a read stopped among empty pages after a record near the stream's 24 hours is named, whatever its chain does", async () => {
  // 100 and 101 applied, 23.5 and 23.4 hours old, then the gap, then 102 unapplied: what
  // lies behind the gap may be trimmed before a run reads it.
  const { reader } = gappedShard(60, () => false, [23.5, 23.4, 23]);
  const finding = await checkShard("g", undefined, reader, appliedOf(["100", "101"]), {
    closed: true,
    now: NOW,
  });
  assert.equal(finding.incomplete?.cause, "pages");
  assert.ok(finding.state.resume, "its chain reads on all the same");
  assert.match(
    judgeTable("t", ARN, [finding], [], undefined, timing).problem ?? "",
    /shard g: could not be read as far as its first unapplied record in one run \(50 pages; stopped after 101\)/,
  );
  // A run that reads on, stopped among them again before any record, counts from 101.
  const next = await checkShard("g", finding.state, reader, appliedOf(["100", "101"]), {
    closed: true,
    now: NOW + 60_000,
  });
  assert.equal(next.state.throughAt, finding.state.throughAt);
  assert.ok(judgeTable("t", ARN, [next], [], undefined, timing).problem);
});

Deno.test("a kept iterator that expired all the same is read again from the last record applied", async () => {
  let kept = true;
  const shard = gappedShard(3, (iterator) => iterator === "g|5" && kept && !(kept = false));
  const state: ShardState = { through: "101", resume: { iterator: "g|5", at: iso(NOW) } };
  const finding = await checkShard("g", state, shard.reader, appliedOf(["100", "101"]), {
    closed: true,
    now: NOW + 60_000,
  });
  assert.deepEqual(shard.asked, [{ after: "101" }]);
  assert.equal(finding.state.frontier?.seq, "102");
});

Deno.test("an open shard keeps no iterator: its empty pages may be its end", async () => {
  const { reader } = gappedShard(8);
  const finding = await checkShard("g", undefined, reader, appliedOf(["100", "101"]), {
    closed: false,
    maxPages: 5,
    now: NOW,
  });
  assert.equal(finding.state.resume, undefined);
});
