import assert from "node:assert/strict";
import type postgres from "postgres";
import { RunGate } from "./run_gate.ts";
import type { StreamReader } from "./stream_check.ts";
import { handleStreamCheckRequest, type StreamCheckDeps } from "./stream_check_run.ts";

const KEY = "sb_secret_test";

/** A database that answers every statement with `rows` and remembers what it was asked. */
function fakeSql(rows: (text: string) => unknown[] = () => []) {
  const statements: { text: string; values: unknown[] }[] = [];
  const sql = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    const text = strings.join("$").replace(/\s+/g, " ").trim();
    statements.push({ text, values });
    return Promise.resolve(rows(text));
  }) as unknown as postgres.Sql;
  return { sql, statements };
}

function deps(extra: Partial<StreamCheckDeps> = {}): StreamCheckDeps {
  return {
    sql: fakeSql().sql,
    serviceKeys: [KEY],
    streamArnOf: () => Promise.reject(new Error("not expected to read AWS")),
    readerOf: () => {
      throw new Error("not expected to read a stream");
    },
    cpu: { source: "process", usedMs: () => 0, measure: (step) => step(), charge: () => {} },
    budget: { cpuMs: 1_100, wallMs: 60_000 },
    gate: new RunGate(1),
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

Deno.test("a spent budget checks no table and names every one skipped", async () => {
  const db = fakeSql();
  const cpu = {
    source: "process" as const,
    usedMs: () => 1_500,
    measure: <T>(s: () => T) => s(),
    charge: () => {},
  };
  const response = await handleStreamCheckRequest(post("{}"), deps({ sql: db.sql, cpu }));
  const body = await response.json();
  assert.equal(response.status, 200);
  assert.equal(body.checked.length, 0);
  assert.equal(body.skipped.length, 9);
  assert.deepEqual(
    db.statements.map((s) => s.text),
    ["select target_table, checked_at from sync.stream_checks"],
    "nothing but which tables were checked when",
  );
});

Deno.test("an AWS failure names the table and the cause, and marks the table once it has gone unchecked too long", async () => {
  const denied = Object.assign(new Error("not authorized to perform dynamodb:DescribeTable"), {
    name: "AccessDeniedException",
  });
  const now = Date.parse("2026-11-29T12:00:00Z");
  const run = async (lastChecked: number | undefined) => {
    const db = fakeSql((text) => {
      if (text.startsWith("select target_table, checked_at")) {
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
  assert.deepEqual(late.recorded!.values[2], new Date(now - 21 * 3600_000));
  assert.match(
    String(late.recorded!.values[1]),
    /could not run: AccessDeniedException: .*\(unchecked since 2026-11-29T08:00:00\.000Z: records the stream trimmed meanwhile cannot be vouched for\)$/,
  );
  // Never checked: the same.
  const never = await run(undefined);
  assert.match(String(never.recorded!.values[1]), /\(never checked: records the stream trimmed/);
});

Deno.test("the least recently checked tables come first, so none is always left over", async () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const db = fakeSql((text) =>
    text.startsWith("select target_table, checked_at")
      ? [
        { target_table: "firespring_segments", checked_at: new Date(now - 60_000) },
        { target_table: "mmp_toledo_leads", checked_at: new Date(now - 7200_000) },
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
      // Each table's check spends the whole budget: only the first is checked.
      cpu: { source: "process", usedMs: () => cpu, measure: (step) => step(), charge: () => {} },
      streamArnOf: (spec) => {
        asked.push(spec.targetTable);
        cpu = 2_000;
        return Promise.reject(new Error("stop here"));
      },
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
