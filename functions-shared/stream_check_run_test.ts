import assert from "node:assert/strict";
import { DynamoError } from "./dynamo_errors.ts";
import { READ_MARGIN_MS } from "./stream_timing.ts";
import type { StreamReader } from "./stream_shard.ts";
import { handleStreamCheckRequest } from "./stream_check_requests.ts";
import { pageCpuMs, SHARD_CPU_MS, TABLE_CPU_MS } from "./stream_check_budget.ts";
import {
  type CheckRow,
  checksDb,
  deps,
  fakeSql,
  fakeStream,
  meter,
  post,
} from "./stream_check_test_utils.ts";

const HOUR = 3600_000;
const NOW = Date.parse("2026-11-29T12:00:00Z");
const ARN = "arn:aws:dynamodb:us-east-1:1:table/firespring-backdoor-segments-dev/stream/1";

Deno.test("a run's allowance counts from its start: what the isolate used before takes none of it", async () => {
  const cpu = meter(800);
  const { reader } = fakeStream({ s1: { from: 1, to: 0 } }, NOW);
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments", "mmp_toledo_leads"]}'),
    deps({
      sql: checksDb(new Map(), () => NOW).sql,
      cpu,
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => reader,
    }),
  );
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.deepEqual(body.checked.map((c: { table: string }) => c.table), [
    "firespring_segments",
    "mmp_toledo_leads",
  ]);
  assert.deepEqual([body.skipped, body.left], [[], []]);
  // Each table's one shard read from its oldest record: ten empty pages, each charged.
  assert.equal(cpu.used, 800 + 2 * (TABLE_CPU_MS + SHARD_CPU_MS + 10 * pageCpuMs(0, 0)));
});

Deno.test("an AWS failure names the table and the cause, and marks the table once it has gone unchecked too long", async () => {
  const denied = Object.assign(new Error("not authorized to perform dynamodb:DescribeTable"), {
    name: "AccessDeniedException",
  });
  const now = Date.parse("2026-11-29T12:00:00Z");
  const run = async (lastChecked: number | undefined) => {
    const db = fakeSql((text) => {
      if (text.startsWith("select target_table, stream_arn, checked_at")) {
        return lastChecked === undefined
          ? []
          : [{ target_table: "firespring_segments", checked_at: new Date(lastChecked) }];
      }
      return text.includes("record_stream_check") ? [{ job: 5 }] : [];
    });
    const response = await handleStreamCheckRequest(
      post('{"tables": ["firespring_segments"]}'),
      deps({ sql: db.sql, streamArnOf: () => Promise.reject(denied), now: () => now }),
    );
    assert.equal(response.status, 200);
    const [line] = (await response.json()).checked;
    assert.match(
      line.error,
      /^firespring_segments: the lost-record check could not run: AccessDeniedException: not authorized/,
    );
    return { line, recorded: db.statements.find((s) => s.text.includes("record_stream_check")) };
  };
  // Checked an hour ago: the next run tries again, nothing is marked.
  const recent = await run(now - 3600_000);
  assert.equal(recent.recorded, undefined);
  // Unchecked for longer than the check tolerates: the failure is the problem.
  const late = await run(now - 4 * 3600_000);
  assert.equal(late.line.backfillJobId, 5);
  // Covered by a backfill since the at-risk line (21 h ago): not a new one every time.
  assert.deepEqual(late.recorded!.values[2], new Date(now - 21 * 3600_000 + READ_MARGIN_MS));
  assert.match(
    String(late.recorded!.values[1]),
    /could not run: AccessDeniedException: .*\(unchecked since 2026-11-29T08:00:00\.000Z: records the stream trimmed meanwhile cannot be vouched for\)$/,
  );
  // Never checked: the same.
  const never = await run(undefined);
  assert.match(String(never.recorded!.values[1]), /\(never checked: records the stream trimmed/);
});

Deno.test("the tables read longest ago come first, so none is always left over", async () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const db = fakeSql((text) =>
    text.startsWith("select target_table, stream_arn, checked_at")
      ? [
        {
          target_table: "firespring_segments",
          stream_arn: ARN,
          checked_at: new Date(now - 60_000),
        },
        { target_table: "mmp_toledo_leads", stream_arn: ARN, checked_at: new Date(now - 7200_000) },
        // Only its failures recorded, the last a minute ago: as never checked.
        { target_table: "toledo_dashboard", stream_arn: "", checked_at: new Date(now - 60_000) },
      ]
      : []
  );
  const asked: string[] = [];
  await handleStreamCheckRequest(
    post(
      '{"tables": ["firespring_segments", "mmp_toledo_leads", "firespring_searches", "toledo_dashboard"]}',
    ),
    deps({
      sql: db.sql,
      now: () => now,
      streamArnOf: (spec) => {
        asked.push(spec.targetTable);
        return Promise.reject(new Error("stop here"));
      },
    }),
  );
  assert.deepEqual(asked, [
    "firespring_searches",
    "toledo_dashboard",
    "mmp_toledo_leads",
    "firespring_segments",
  ]);
});

Deno.test("a table without a stream is a problem: its changes are not captured", async () => {
  const db = fakeSql((text) => text.includes("record_stream_check") ? [{ job: 12 }] : []);
  const response = await handleStreamCheckRequest(
    post('{"tables": ["mmp_toledo_leads"]}'),
    deps({ sql: db.sql, streamArnOf: () => Promise.resolve(undefined) }),
  );
  const [line] = (await response.json()).checked;
  assert.match(line.problem, /^mmp_toledo_leads: .*Lead-.* has no stream enabled/);
  assert.equal(line.backfillJobId, 12);
  const recorded = db.statements.find((s) => s.text.includes("record_stream_check"))!;
  assert.equal(recorded.values[3], line.problem);
});

Deno.test("a record that waits is asked about since the last check; nothing applied since makes the problem", async () => {
  const HOUR = 3600_000;
  const now = Date.parse("2026-11-28T12:00:00Z");
  const checkedAt = new Date(now - HOUR);
  const arn = "arn:aws:dynamodb:us-east-1:1:table/firespring-backdoor-segments-dev/stream/1";
  const record = (seq: string, hours: number) => ({ seq, createdAt: now - hours * HOUR });
  const db = fakeSql((text) => {
    if (text.includes("from sync.stream_checks where target_table")) {
      const frontier = { seq: "100", created_at: new Date(now - 3 * HOUR).toISOString() };
      return [{ stream_arn: arn, checked_at: checkedAt, shards: { s1: { frontier } } }];
    }
    if (text.includes("stream_records_applied_of")) return [{ s: [] }];
    if (text.includes("from sync.stream_batches_applied")) return [{ applied: false }];
    if (text.includes("sync.record_stream_check")) return [{ job: 7 }];
    return [];
  });
  let reads = 0;
  const reader: StreamReader = {
    shards: () => Promise.resolve([{ id: "s1", closed: false }]),
    iterator: () => Promise.resolve("it"),
    read: () =>
      Promise.resolve(
        reads++ === 0
          ? { records: [record("100", 3), record("101", 2.5)], next: "it" }
          : { records: [], next: "it" },
      ),
  };
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    deps({
      sql: db.sql,
      streamArnOf: () => Promise.resolve(arn),
      readerOf: () => reader,
      now: () => now,
    }),
  );
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.match(body.checked[0].problem, /record 100 of shard s1 .* nothing delivers this stream/);
  assert.equal(body.checked[0].backfillJobId, 7);
  const asked = db.statements.find((s) => s.text.includes("from sync.stream_batches_applied"));
  assert.equal((asked!.values[0] as Date).getTime(), checkedAt.getTime(), "since the last check");
  assert.equal(asked!.values[1], arn);
});

/** Two shards of ten records each after their last run's; s2 read longest ago. */
function twoShards(): Map<string, CheckRow> {
  return new Map([["firespring_segments", {
    stream_arn: ARN,
    checked_at: new Date(NOW - HOUR),
    shards: {
      s1: { through: "100", readAt: new Date(NOW - 1.5 * HOUR).toISOString() },
      s2: { through: "200", readAt: new Date(NOW - 2 * HOUR).toISOString() },
    },
  }]]);
}

Deno.test("a run its budget stops records what it read, the shard read longest ago first, and keeps the others as they were", async () => {
  const rows = twoShards();
  rows.set("mmp_toledo_leads", { stream_arn: ARN, checked_at: new Date(NOW - 60_000), shards: {} });
  const before = structuredClone(rows.get("firespring_segments")!.shards);
  const { reader, reads } = fakeStream(
    { s1: { from: 101, to: 110 }, s2: { from: 201, to: 210 } },
    NOW,
  );
  // Room for three pages of one record after the table's and the shard's own charges.
  const runCpuMs = TABLE_CPU_MS + SHARD_CPU_MS + 2.5 * pageCpuMs(1, 0);
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments", "mmp_toledo_leads"]}'),
    deps({
      sql: checksDb(rows, () => NOW).sql,
      cpu: meter(0),
      now: () => NOW,
      budget: { runCpuMs, wallMs: 60_000 },
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => reader,
      callSelf: () => Promise.resolve(),
    }),
  );
  const body = await response.json();
  assert.deepEqual(body.checked, [{
    table: "firespring_segments",
    streamArn: ARN,
    shards: 2,
    unfinishedShards: 2,
  }]);
  assert.deepEqual(body.skipped, ["mmp_toledo_leads"]);
  assert.deepEqual(body.left, ["firespring_segments", "mmp_toledo_leads"]);
  assert.deepEqual(reads, ["s2", "s2", "s2"]);
  assert.deepEqual(rows.get("firespring_segments")!.shards, {
    s1: { ...before.s1, pending: true },
    s2: {
      through: "203",
      throughAt: new Date(NOW - 60_000).toISOString(),
      readAt: new Date(NOW).toISOString(),
      stoppedShort: true,
    },
  });
});

/**
 * A run over `twoShards()`'s table (s1 and s2 with two records each) whose reads of s2
 * fail with `error`; its answer's first line, what it recorded, and its log.
 */
async function checkWithShardFailing(error: Error, failing = "s2") {
  const rows = twoShards();
  const before = structuredClone(rows.get("firespring_segments")!.shards);
  const { reader } = fakeStream({ s1: { from: 101, to: 102 }, s2: { from: 201, to: 202 } }, NOW);
  const lines: string[] = [];
  const reads: string[] = [];
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    deps({
      sql: checksDb(rows, () => NOW).sql,
      now: () => NOW,
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => ({
        ...reader,
        read: (iterator) => {
          reads.push(iterator.split(":")[0]);
          return iterator.startsWith(`${failing}:`) ? Promise.reject(error) : reader.read(iterator);
        },
      }),
      callSelf: () => Promise.resolve(),
      log: (line) => lines.push(line),
    }),
  );
  assert.equal(response.status, 200);
  const [line] = (await response.json()).checked;
  return { line, before, recorded: rows.get("firespring_segments")!.shards, lines, reads };
}

const throttled = (shard: string) =>
  new DynamoError(
    "LimitExceededException",
    `Too many requests for shard ${shard}`,
    { httpStatusCode: 400 },
    "throttling",
  );

Deno.test("a shard whose reads stay throttled is left unread, not handed on; the others read are recorded", async () => {
  // s1's GetRecords (s1 read after s2) throttled past the client's retries (a third
  // reader of the shard).
  const { line, before, recorded, lines } = await checkWithShardFailing(throttled("s1"), "s1");
  assert.deepEqual(line, {
    table: "firespring_segments",
    streamArn: ARN,
    shards: 2,
  }, "no shard handed on: the next run within the hour would meet the same throttle");
  assert.deepEqual(recorded.s1, before.s1, "s1 kept as it was");
  assert.equal(recorded.s2.through, "202", "s2's read recorded");
  assert.ok(
    lines.some((l) =>
      l.includes(
        "firespring_segments: shard s1: Too many requests for shard s1; this shard and the table's others not read yet are left for the next hourly run",
      )
    ),
    lines.join("\n"),
  );
});

Deno.test("after a throttled shard, the table's other shards are not read in that run", async () => {
  // 40 throttled shards read one by one spent 400 s of retries, past the wall clock.
  const { recorded, before, reads } = await checkWithShardFailing(throttled("s2"));
  assert.deepEqual(reads, ["s2"], "s1 not read after s2's throttle");
  assert.deepEqual([recorded.s1, recorded.s2], [before.s1, before.s2], "both kept as they were");
});

Deno.test("a shard read refused for good (access denied) fails the table's check, naming it", async () => {
  const { line } = await checkWithShardFailing(
    new DynamoError("AccessDeniedException", "not authorized to perform dynamodb:GetRecords", {
      httpStatusCode: 400,
    }),
  );
  assert.match(
    line.error,
    /^firespring_segments: the lost-record check could not run: AccessDeniedException: shard s2: not authorized/,
  );
});

Deno.test("a DescribeStream throttled past the client's retries fails the table's check, naming it; not handed on", async () => {
  // DescribeStream past AWS's 10 a second, past the client's retries
  // (local-stack/aws/describe_limit.ts answers it so). A throttle is a failure like any
  // other: handing the table on at once would spend the chain's runs on the same throttle,
  // and a table skipped without a record could go unchecked for ever.
  const throttled = new DynamoError(
    "ThrottlingException",
    "DescribeStream on firespring-backdoor-segments-dev: Rate exceeded",
    { httpStatusCode: 400 },
    "throttling",
  );
  const rows = twoShards(); // firespring_segments, checked an hour ago
  rows.set("mmp_toledo_leads", {
    stream_arn: ARN,
    checked_at: new Date(NOW - 4 * HOUR),
    shards: {},
  });
  const before = structuredClone(rows.get("firespring_segments")!);
  const db = checksDb(rows, () => NOW);
  const { reader } = fakeStream({}, NOW);
  const handedOn: unknown[] = [];
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments", "mmp_toledo_leads", "firespring_searches"]}'),
    deps({
      sql: db.sql,
      now: () => NOW,
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => ({ ...reader, shards: () => Promise.reject(throttled) }),
      waitUntil: (work) => void work,
      callSelf: (body) => {
        handedOn.push(body);
        return Promise.resolve();
      },
    }),
  );
  const body = await response.json();
  assert.deepEqual([body.skipped, body.left, handedOn], [[], [], []]);
  assert.deepEqual(
    body.checked.map((r: { table: string; error: string }) => [r.table, r.error]),
    [
      [
        "firespring_searches",
        "firespring_searches: the lost-record check could not run: ThrottlingException: " +
        "DescribeStream on firespring-backdoor-segments-dev: Rate exceeded",
      ],
      [
        "mmp_toledo_leads",
        "mmp_toledo_leads: the lost-record check could not run: ThrottlingException: " +
        "DescribeStream on firespring-backdoor-segments-dev: Rate exceeded",
      ],
      [
        "firespring_segments",
        "firespring_segments: the lost-record check could not run: ThrottlingException: " +
        "DescribeStream on firespring-backdoor-segments-dev: Rate exceeded",
      ],
    ],
  );
  // Checked an hour ago: nothing recorded, its state as it was; unchecked for 4 hours,
  // or never checked: marked (fail closed), the throttle named as what kept it unchecked.
  assert.deepEqual(rows.get("firespring_segments"), before);
  const marked = db.statements.filter((s) => s.values.length === 4);
  assert.deepEqual(marked.map((s) => s.values[0]), ["firespring_searches", "mmp_toledo_leads"]);
  assert.match(String(marked[0].values[1]), /Rate exceeded \(never checked: /);
  assert.match(
    String(marked[1].values[1]),
    /Rate exceeded \(unchecked since 2026-11-29T08:00:00\.000Z: /,
  );
});

Deno.test("a table another run is reading is left to it: not read, not recorded, not handed on", async () => {
  const rows = twoShards();
  const before = structuredClone(rows.get("firespring_segments")!);
  const checks = checksDb(rows, () => NOW);
  const db = fakeSql((text) =>
    text.includes("sync.take_stream_check_lease") ? [{ taken: false }] : []
  );
  const lines: string[] = [];
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    deps({
      sql: db.sql,
      now: () => NOW,
      streamArnOf: () => Promise.reject(new Error("not expected to read AWS")),
      log: (line) => lines.push(line),
    }),
  );
  const body = await response.json();
  assert.deepEqual(body, { checked: [], skipped: [], left: [], busy: ["firespring_segments"] });
  assert.equal(db.statements.filter((s) => s.text.includes("record_stream_check")).length, 0);
  assert.deepEqual(rows.get("firespring_segments"), before);
  assert.ok(lines.includes(
    "stream-check: firespring_segments: another run is reading its stream; left to it",
  ));
  // A run that holds the lease gives it back once the table is recorded.
  const { reader } = fakeStream({ s1: { from: 101, to: 102 }, s2: { from: 201, to: 202 } }, NOW);
  await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    deps({
      sql: checks.sql,
      now: () => NOW,
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => reader,
      callSelf: () => Promise.resolve(),
    }),
  );
  const order = checks.statements.map((s) => s.text).filter((t) =>
    /take_stream_check_lease|record_stream_check|release_stream_check_lease/.test(t)
  ).map((t) => t.match(/sync\.(\w+)/)![1]);
  assert.deepEqual(order, [
    "take_stream_check_lease",
    "record_stream_check",
    "release_stream_check_lease",
  ]);
});

for (const firstLook of [false, true]) {
  Deno.test(`a chain of runs reads each shard whole once, then ends (${firstLook ? "a first look" : "shards read an hour ago"})`, async () => {
    // Six open shards, each read to its end (one record, then its empty pages) in about a
    // third of a run's budget: a run reads three and leaves three unread. At a first look
    // the unread ones take the run's time as theirs, and are still read.
    const ids = ["s1", "s2", "s3", "s4", "s5", "s6"];
    const rows = new Map<string, CheckRow>(
      firstLook ? [] : [["firespring_segments", {
        stream_arn: ARN,
        checked_at: new Date(NOW - HOUR),
        shards: Object.fromEntries(ids.map((id, i) => [id, {
          through: String(i * 100),
          readAt: new Date(NOW - HOUR).toISOString(),
        }])),
      }]],
    );
    const { reader, reads } = fakeStream(
      Object.fromEntries(ids.map((id, i) => [id, { from: i * 100 + 1, to: i * 100 + 1 }])),
      NOW,
    );
    const perShard = SHARD_CPU_MS + pageCpuMs(1, 0) + 3 * pageCpuMs(0, 0);
    let now = NOW;
    let body = '{"tables": ["firespring_segments"]}';
    const runs: { read: string[] }[] = [];
    const waited: Promise<unknown>[] = [];
    while (runs.length < 6) {
      const handedOn: unknown[] = [];
      const before = reads.length;
      const response = await handleStreamCheckRequest(
        post(body),
        deps({
          sql: checksDb(rows, () => now).sql,
          cpu: meter(0),
          now: () => now,
          budget: { runCpuMs: TABLE_CPU_MS + 2.5 * perShard, wallMs: 60_000 },
          streamArnOf: () => Promise.resolve(ARN),
          readerOf: () => reader,
          callSelf: (next) => Promise.resolve(void handedOn.push(next)),
          waitUntil: (work) => void waited.push(work),
        }),
      );
      await response.text();
      await Promise.all(waited.splice(0));
      runs.push({ read: [...new Set(reads.slice(before))] });
      if (handedOn.length === 0) break;
      body = JSON.stringify(handedOn[0]);
      now += 1_000;
    }
    // The first run reads three (the third stopped short by the budget), the next ones
    // the rest and that one's end; a chain that read every shard again ran to its cap.
    assert.deepEqual(runs[0].read, ["s1", "s2", "s3"]);
    assert.ok(runs.length <= 3, `the chain took ${runs.length} runs: ${JSON.stringify(runs)}`);
    assert.deepEqual([...new Set(runs.flatMap((r) => r.read))].sort(), ids);
    for (const id of ids) {
      const state = rows.get("firespring_segments")!.shards[id];
      assert.equal(state.through, String(ids.indexOf(id) * 100 + 1), `${id} read to its end`);
      assert.equal(state.pending, undefined, `${id} read`);
      assert.equal(state.stoppedShort, undefined, `${id} read whole`);
    }
  });
}

Deno.test("runs that each read a little get round every table and every shard in turn", async () => {
  const rows = twoShards();
  let now = NOW;
  const { reader } = fakeStream({ s1: { from: 101, to: 110 }, s2: { from: 201, to: 210 } }, NOW);
  const order: string[] = [];
  for (let run = 0; run < 8; run++) {
    now += 60_000;
    const response = await handleStreamCheckRequest(
      post('{"tables": ["firespring_segments", "firespring_searches"]}'),
      deps({
        sql: checksDb(rows, () => now).sql,
        cpu: meter(0),
        now: () => now,
        budget: { runCpuMs: 1, wallMs: 60_000 }, // one page a run
        streamArnOf: (spec) => {
          order.push(spec.targetTable);
          return Promise.resolve(ARN);
        },
        readerOf: () => reader,
        callSelf: () => Promise.resolve(),
      }),
    );
    assert.equal(response.status, 200);
  }
  assert.equal(order[0], "firespring_searches", "never checked first");
  // Each run read one page, of the shard read longest ago anywhere (searches' two shards
  // were first seen together: its s1, listed first, is read first): each shard in turn.
  assert.deepEqual(order, [
    "firespring_searches",
    "firespring_segments",
    "firespring_segments",
    "firespring_searches",
    "firespring_searches",
    "firespring_segments",
    "firespring_segments",
    "firespring_searches",
  ]);
  const through = (table: string) =>
    Object.values(rows.get(table)!.shards).map((s) => s.through).sort();
  assert.deepEqual(through("firespring_segments"), ["102", "202"]);
  assert.deepEqual(through("firespring_searches"), ["103", "201"]);
});

Deno.test("a table the budget keeps skipping is marked once it has gone unchecked too long; a never-checked one is handed on", async () => {
  const rows = new Map<string, CheckRow>([
    ["firespring_segments", { stream_arn: ARN, checked_at: new Date(NOW - 5 * HOUR), shards: {} }],
    ["mmp_toledo_leads", { stream_arn: ARN, checked_at: new Date(NOW - 4 * HOUR), shards: {} }],
  ]);
  const db = checksDb(rows, () => NOW);
  const lines: string[] = [];
  const response = await handleStreamCheckRequest(
    post(
      '{"tables": ["firespring_segments", "mmp_toledo_leads", "firespring_searches", "firespring_actions"]}',
    ),
    deps({
      sql: db.sql,
      cpu: meter(0),
      now: () => NOW,
      budget: { runCpuMs: 1, wallMs: 60_000 },
      streamArnOf: () => Promise.resolve(undefined),
      callSelf: () => Promise.resolve(),
      log: (line) => lines.push(line),
    }),
  );
  const body = await response.json();
  assert.deepEqual(body.checked.map((c: { table: string }) => c.table), ["firespring_searches"]);
  // Never checked, firespring_actions is skipped after firespring_searches, not marked.
  assert.deepEqual(body.skipped, ["firespring_actions", "firespring_segments", "mmp_toledo_leads"]);
  const marked = db.statements.filter((s) => s.values.length === 4);
  assert.deepEqual(marked.map((s) => s.values[0]), ["firespring_segments", "mmp_toledo_leads"]);
  assert.match(
    String(marked[0].values[1]),
    /^firespring_segments: the lost-record check's runs spent their budget before it \(unchecked since 2026-11-29T07:00:00\.000Z: records the stream trimmed meanwhile cannot be vouched for\)$/,
  );
  assert.ok(lines.includes("stream-check: mmp_toledo_leads: unchecked too long (backfill 99)"));
  // Checked 2 h ago and skipped: only handed on.
  rows.set("firespring_segments", {
    stream_arn: ARN,
    checked_at: new Date(NOW - 2 * HOUR),
    shards: {},
  });
  const again = checksDb(rows, () => NOW);
  await handleStreamCheckRequest(
    post('{"tables": ["firespring_searches", "firespring_segments"]}'),
    deps({
      sql: again.sql,
      cpu: meter(0),
      now: () => NOW,
      budget: { runCpuMs: 1, wallMs: 60_000 },
      streamArnOf: () => Promise.resolve(undefined),
      callSelf: () => Promise.resolve(),
    }),
  );
  assert.equal(again.statements.filter((s) => s.values.length === 4).length, 0);
});

Deno.test("a closed shard read whole long ago is no gap; a shard new since the last run is read after older ones", async () => {
  const rows = new Map<string, CheckRow>([["firespring_segments", {
    stream_arn: ARN,
    checked_at: new Date(NOW - HOUR),
    shards: {
      s0: { through: "50", done: true, readAt: new Date(NOW - 5 * HOUR).toISOString() },
      s1: { through: "100", readAt: new Date(NOW - 2 * HOUR).toISOString() },
    },
  }]]);
  const { reader, reads } = fakeStream({
    s0: { from: 1, to: 50 },
    s2: { from: 201, to: 201 },
    s1: { from: 101, to: 101 },
  }, NOW);
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    deps({
      sql: checksDb(rows, () => NOW).sql,
      cpu: meter(0),
      now: () => NOW,
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => reader,
    }),
  );
  const body = await response.json();
  assert.equal(body.checked[0].problem, undefined, JSON.stringify(body));
  // s1 (read 2 h ago) before s2 (new: as of the last run, 1 h ago); s0 not read at all.
  assert.equal(reads[0], "s1");
  assert.ok(reads.includes("s2") && !reads.includes("s0"), reads.join());
});

Deno.test("a run of a chain reads again a shard with a frontier: what follows it still counts", async () => {
  // s1's frontier was read by the chain's last run seconds ago; the verdict weighs what a
  // read sees after it (records applied past it: the mapping gave it up and went on), so
  // the next run of the chain reads it again rather than judge it on no read.
  const created = new Date(NOW - 3 * HOUR).toISOString();
  const readAt = new Date(NOW - 20_000).toISOString();
  const rows = new Map<string, CheckRow>([["firespring_segments", {
    stream_arn: ARN,
    checked_at: new Date(NOW - 20_000),
    shards: { s1: { through: "100", frontier: { seq: "101", created_at: created }, readAt } },
  }]]);
  const { reader, reads } = fakeStream({ s1: { from: 101, to: 102 } }, NOW);
  const waited: Promise<unknown>[] = [];
  const since = new Date(NOW - 30_000).toISOString();
  const response = await handleStreamCheckRequest(
    post(JSON.stringify({ tables: ["firespring_segments"], handOn: 1, since })),
    deps({
      sql: checksDb(rows, () => NOW).sql,
      now: () => NOW,
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => reader,
      callSelf: () => Promise.resolve(),
      waitUntil: (work) => void waited.push(work),
    }),
  );
  assert.equal(response.status, 202);
  await Promise.all(waited);
  assert.ok(reads.includes("s1"), "the shard with a frontier is read again");
  assert.equal(rows.get("firespring_segments")!.shards.s1.frontier, undefined, "now applied");
});

Deno.test("a hand-on's since must lie within the 3 hours a shard may go unread", async () => {
  for (const since of [NOW - 4 * HOUR, NOW + 4 * HOUR]) {
    const body = { handOn: 1, since: new Date(since).toISOString() };
    const refused = await handleStreamCheckRequest(
      post(JSON.stringify(body)),
      deps({ now: () => NOW }),
    );
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error, /within the 3 hours a shard may go unread/);
  }
});

Deno.test("a closed shard of more empty pages than one run reads is handed on, and its chain reads past them", async () => {
  // Record 1, 60 empty pages, record 2, the shard's end: one run reads 50 pages.
  const reader: StreamReader = {
    shards: () => Promise.resolve([{ id: "c1", closed: true, endingSeq: "2" }]),
    iterator: (_id, position) =>
      Promise.resolve(position !== "oldest" && "after" in position ? "c1:1" : "c1:0"),
    read: (iterator) => {
      const place = Number(iterator.split(":")[1]);
      const records = place === 0 || place === 61
        ? [{ seq: place === 0 ? "1" : "2", createdAt: NOW - HOUR }]
        : [];
      return Promise.resolve({ records, next: place === 61 ? undefined : `c1:${place + 1}` });
    },
  };
  const rows = new Map<string, CheckRow>();
  const handedOn: unknown[] = [];
  const background: Promise<unknown>[] = [];
  const run = (request: Request, now: number) =>
    handleStreamCheckRequest(
      request,
      deps({
        sql: checksDb(rows, () => now).sql,
        now: () => now,
        budget: { runCpuMs: 60_000, wallMs: 60_000 },
        streamArnOf: () => Promise.resolve(ARN),
        readerOf: () => reader,
        callSelf: (body) => (handedOn.push(body), Promise.resolve()),
        waitUntil: (work) => void background.push(work),
      }),
    );
  const first = await (await run(post('{"tables": ["firespring_segments"]}'), NOW)).json();
  assert.deepEqual(first.left, ["firespring_segments"], "handed on");
  const kept = rows.get("firespring_segments")!.shards.c1;
  assert.deepEqual(kept.resume, { iterator: "c1:50", at: new Date(NOW).toISOString() });
  assert.equal(kept.stoppedShort, true);
  // Its successor, a minute on, reads on from where it stopped, to the shard's end.
  const since = new Date(NOW).toISOString();
  const body = JSON.stringify({ tables: ["firespring_segments"], handOn: 1, since });
  const second = await run(post(body), NOW + 60_000);
  assert.equal(second.status, 202);
  await Promise.all(background);
  const after = rows.get("firespring_segments")!.shards.c1;
  assert.equal(after.through, "2", "read past the empty pages to record 2");
  assert.equal(after.done, true);
  assert.equal(after.resume, undefined);
});
