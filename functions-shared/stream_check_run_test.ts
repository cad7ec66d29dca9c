import assert from "node:assert/strict";
import type postgres from "postgres";
import { RunGate } from "./run_gate.ts";
import type { StreamReader } from "./stream_check.ts";
import {
  handleStreamCheckRequest,
  MAX_HAND_ONS,
  type StreamCheckRequestDeps,
} from "./stream_check_requests.ts";
import { PAGE_CPU_MS } from "./stream_check_run.ts";

const KEY = "sb_secret_test";

/** A database that answers every statement with `rows` and remembers what it was asked. */
function fakeSql(rows: (text: string, values: unknown[]) => unknown[] = () => []) {
  const statements: { text: string; values: unknown[] }[] = [];
  const sql = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    const text = strings.join("$").replace(/\s+/g, " ").trim();
    statements.push({ text, values });
    return Promise.resolve(rows(text, values));
  }) as unknown as postgres.Sql;
  return { sql, statements };
}

function deps(extra: Partial<StreamCheckRequestDeps> = {}): StreamCheckRequestDeps {
  return {
    sql: fakeSql().sql,
    serviceKeys: [KEY],
    streamArnOf: () => Promise.reject(new Error("not expected to read AWS")),
    readerOf: () => {
      throw new Error("not expected to read a stream");
    },
    cpu: { source: "process", usedMs: () => 0, measure: (step) => step(), charge: () => {} },
    budget: { runCpuMs: 600, wallMs: 60_000 },
    gate: new RunGate(1),
    waitUntil: () => {},
    callSelf: () => Promise.reject(new Error("not expected to hand on")),
    log: () => {},
    ...extra,
  };
}

const post = (body: string, key = KEY) =>
  new Request("http://localhost/stream-check", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body,
  });

Deno.test("refusals: 405 not POST, 401 no key, 400 bad body or unknown table, each saying why", async () => {
  const get = await handleStreamCheckRequest(new Request("http://localhost/"), deps());
  assert.equal(get.status, 405);
  assert.equal((await handleStreamCheckRequest(post("{}", "wrong"), deps())).status, 401);
  const notJson = await handleStreamCheckRequest(post("{"), deps());
  assert.equal(notJson.status, 400);
  assert.match((await notJson.json()).error, /not valid JSON/);
  const unknown = await handleStreamCheckRequest(post('{"tables": ["nope"]}'), deps());
  assert.equal(unknown.status, 400);
  assert.match((await unknown.json()).error, /unknown target table\(s\): nope/);
});

Deno.test("a run's allowance counts from its start: what the isolate used before takes none of it", async () => {
  const db = fakeSql((text) => text.includes("record_stream_check") ? [{ job: null }] : []);
  let used = 1_500;
  const cpu = {
    source: "estimate" as const,
    usedMs: () => used,
    measure: <T>(s: () => T) => s(),
    charge: (ms: number) => used += ms,
  };
  const reader: StreamReader = {
    shards: () => Promise.resolve([{ id: "s1", closed: false }]),
    iterator: () => Promise.resolve("it"),
    read: () => Promise.resolve({ records: [], next: "it" }),
  };
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments", "mmp_toledo_leads"]}'),
    deps({
      sql: db.sql,
      cpu,
      streamArnOf: () => Promise.resolve("arn:aws:dynamodb:us-east-1:1:table/t/stream/1"),
      readerOf: () => reader,
    }),
  );
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.deepEqual(body.checked.map((c: { table: string }) => c.table), [
    "firespring_segments",
    "mmp_toledo_leads",
  ]);
  assert.deepEqual(body.skipped, []);
  // Each shard read from its oldest record: ten empty pages, each charged on the meter.
  assert.equal(used, 1_500 + 2 * 10 * PAGE_CPU_MS);
});

Deno.test("an AWS failure names the table and the cause, and marks the table once it has gone unchecked too long", async () => {
  const denied = Object.assign(new Error("not authorized to perform dynamodb:DescribeTable"), {
    name: "AccessDeniedException",
  });
  const now = Date.parse("2026-11-29T12:00:00Z");
  const run = async (lastChecked: number | undefined) => {
    const db = fakeSql((text) => {
      if (text.startsWith("select target_table, checked_at")) {
        return lastChecked === undefined ? [] : [{
          target_table: "firespring_segments",
          checked_at: new Date(lastChecked),
          oldest_read: new Date(lastChecked),
        }];
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
  assert.deepEqual(late.recorded!.values[2], new Date(now - 21 * 3600_000));
  assert.match(
    String(late.recorded!.values[1]),
    /could not run: AccessDeniedException: .*\(unchecked since 2026-11-29T08:00:00\.000Z: records the stream trimmed meanwhile cannot be vouched for\)$/,
  );
  // Never checked: the same.
  const never = await run(undefined);
  assert.match(String(never.recorded!.values[1]), /\(never checked: records the stream trimmed/);
});

Deno.test("the tables whose oldest shard was read longest ago come first, so none is always left over", async () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const db = fakeSql((text) =>
    text.startsWith("select target_table, checked_at")
      ? [
        {
          target_table: "firespring_segments",
          checked_at: new Date(now - 60_000),
          oldest_read: new Date(now - 60_000),
        },
        // Checked a minute ago, one of its shards left unread since two hours ago.
        {
          target_table: "mmp_toledo_leads",
          checked_at: new Date(now - 60_000),
          oldest_read: new Date(now - 7200_000),
        },
      ]
      : []
  );
  const asked: string[] = [];
  let cpu = 0;
  await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments", "mmp_toledo_leads", "firespring_searches"]}'),
    deps({
      sql: db.sql,
      now: () => now,
      // The first table's check spends the whole budget: only it is checked.
      cpu: { source: "process", usedMs: () => cpu, measure: (step) => step(), charge: () => {} },
      streamArnOf: (spec) => {
        asked.push(spec.targetTable);
        cpu = 2_000;
        return Promise.reject(new Error("stop here"));
      },
      callSelf: () => Promise.resolve(),
    }),
  );
  assert.deepEqual(asked, ["firespring_searches"], "never checked, then the oldest");
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

const ARN = "arn:aws:dynamodb:us-east-1:1:table/firespring-backdoor-segments-dev/stream/1";

/**
 * A stream of two shards, s1 with records 101 to 110 (one a page, each applied) after the
 * last run's 100, s2 unread since; a meter on which each page's charge counts.
 */
function busyStream(now: number) {
  const readAt = new Date(now - 3600_000).toISOString();
  const before = {
    s1: { through: "100", readAt },
    s2: { frontier: { seq: "900", created_at: readAt }, readAt },
  };
  const db = fakeSql((text, values) => {
    if (text.includes("from sync.stream_checks where target_table")) {
      return [{ stream_arn: ARN, checked_at: new Date(now - 3600_000), shards: before }];
    }
    if (text.includes("stream_records_applied_of")) return [{ s: values[1] }];
    if (text.includes("record_stream_check")) return [{ job: null }];
    return [];
  });
  const reader: StreamReader = {
    shards: () => Promise.resolve([{ id: "s1", closed: false }, { id: "s2", closed: false }]),
    iterator: (_shard, position) =>
      Promise.resolve(typeof position === "object" && "after" in position ? position.after : "x"),
    read: (at) => {
      const seq = String(Number(at) + 1);
      const records = Number(seq) <= 110 ? [{ seq, createdAt: now - 60_000 }] : [];
      return Promise.resolve({ records, next: records.length ? seq : at });
    },
  };
  let used = 0;
  const cpu = {
    source: "estimate" as const,
    usedMs: () => used,
    measure: <T>(s: () => T) => s(),
    charge: (ms: number) => used += ms,
  };
  return { db, reader, cpu, before };
}

Deno.test("a run its budget stops records what it read, keeps the unread shards as they were and hands the rest on", async () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const { db, reader, cpu, before } = busyStream(now);
  const handedOn: unknown[] = [];
  const waited: Promise<unknown>[] = [];
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments", "mmp_toledo_leads"]}'),
    deps({
      sql: db.sql,
      cpu,
      now: () => now,
      budget: { runCpuMs: 3 * PAGE_CPU_MS, wallMs: 60_000 },
      streamArnOf: () => Promise.resolve(ARN),
      readerOf: () => reader,
      waitUntil: (work) => waited.push(work),
      callSelf: (body) => Promise.resolve(void handedOn.push(body)),
    }),
  );
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.deepEqual(body.checked, [{
    table: "firespring_segments",
    streamArn: ARN,
    shards: 2,
    unfinishedShards: 2,
  }]);
  assert.deepEqual(body.skipped, ["mmp_toledo_leads"]);
  assert.deepEqual(body.left, ["firespring_segments", "mmp_toledo_leads"]);
  assert.equal(body.handedOn, true);
  await Promise.all(waited);
  assert.deepEqual(handedOn, [{ tables: ["firespring_segments", "mmp_toledo_leads"], handOn: 1 }]);
  const recorded = db.statements.find((s) => s.text.includes("record_stream_check"))!;
  assert.deepEqual(JSON.parse(String(recorded.values[2])), {
    s1: { through: "103", readAt: new Date(now).toISOString() },
    s2: before.s2,
  });
  assert.equal(recorded.values[3], null, "no problem: what was left unread is young");
});

Deno.test("a hand-on is answered 202 and runs in the background; a busy isolate answers it 503", async () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const { db, reader, cpu } = busyStream(now);
  const handedOn: unknown[] = [];
  const waited: Promise<unknown>[] = [];
  const gate = new RunGate(1);
  const handOnDeps = deps({
    sql: db.sql,
    cpu,
    now: () => now,
    gate,
    streamArnOf: () => Promise.resolve(ARN),
    readerOf: () => reader,
    waitUntil: (work) => waited.push(work),
    callSelf: (body) => Promise.resolve(void handedOn.push(body)),
  });
  const request = () => post('{"tables": ["firespring_segments"], "handOn": 7}');
  const accepted = await handleStreamCheckRequest(request(), handOnDeps);
  assert.equal(accepted.status, 202);
  assert.deepEqual(await accepted.json(), { accepted: true });
  const busy = await handleStreamCheckRequest(request(), handOnDeps);
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("retry-after"), "1");
  assert.match((await busy.json()).error, /already running in this isolate/);
  await Promise.all(waited);
  // Its whole allowance read the stream to its end: nothing left, no successor.
  assert.deepEqual(handedOn, []);
  const recorded = db.statements.find((s) => s.text.includes("record_stream_check"))!;
  assert.equal(JSON.parse(String(recorded.values[2])).s1.through, "110");
});

Deno.test("a chain of hand-ons ends at its limit, saying so; a bad link number is refused", async () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const { db, reader, cpu } = busyStream(now);
  const lines: string[] = [];
  const waited: Promise<unknown>[] = [];
  const last = deps({
    sql: db.sql,
    cpu,
    now: () => now,
    budget: { runCpuMs: 1, wallMs: 60_000 },
    streamArnOf: () => Promise.resolve(ARN),
    readerOf: () => reader,
    waitUntil: (work) => waited.push(work),
    log: (line) => lines.push(line),
  });
  const body = JSON.stringify({ tables: ["firespring_segments"], handOn: MAX_HAND_ONS });
  assert.equal((await handleStreamCheckRequest(post(body), last)).status, 202);
  await Promise.all(waited);
  assert.ok(
    lines.some((l) => l.includes(`${MAX_HAND_ONS} runs in a row left firespring_segments`)),
    lines.join("\n"),
  );
  for (const handOn of [-1, 1.5, "2", MAX_HAND_ONS + 1]) {
    const refused = await handleStreamCheckRequest(post(JSON.stringify({ handOn })), deps());
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error, /handOn must be a whole number from 0 to 100/);
  }
});
