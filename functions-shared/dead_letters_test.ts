/**
 * The dead-letter replay with a fake database: each kind of stored record mapped again
 * at its stored position, what closes and what stays open (with the new reason), and
 * the HTTP endpoint's refusals.
 */

import assert from "node:assert/strict";
import {
  handleReplayRequest,
  REPLAY_LIMIT,
  replayDeadLetters,
  type ReplayFilter,
} from "./dead_letters.ts";
import type { StoredLetter } from "./dead_letter_remap.ts";
import { fakeSql, type Statement } from "./testing_fakes.ts";

const SEGMENTS = "firespring-backdoor-segments-dev";
const RECEIVED = new Date("2026-03-01T00:00:00Z");

type Stored = StoredLetter;

const stored = (id: number, record: unknown, over: Partial<Stored> = {}): Stored => ({
  id: String(id),
  record: typeof record === "string" ? record : JSON.stringify(record),
  position_at: new Date("2026-02-01T00:00:00Z"),
  position_source: "backfill",
  received_at: RECEIVED,
  source_table: SEGMENTS,
  target_table: "firespring_segments",
  row_key: `{"segment_id": "k${id}"}`,
  ...over,
});

const scanned = (item: Record<string, unknown>) => ({ sourceTable: SEGMENTS, item });

const streamRecord = (id: string, seq: string) => ({
  eventID: `ev-${id}`,
  eventName: "MODIFY",
  eventSourceARN: `arn:aws:dynamodb:us-east-1:000000000000:table/${SEGMENTS}/stream/x`,
  dynamodb: {
    Keys: { segment_id: { S: id } },
    NewImage: { segment_id: { S: id }, value: { N: "7" } },
    SequenceNumber: seq,
    ApproximateCreationDateTime: 1770379200,
  },
});

interface MergedChange {
  op: string;
  row: Record<string, unknown>;
  seq: string | null;
  changed_at: string;
  source: string;
}

/**
 * A database holding the open dead letters `letters`; its merge refuses (SQLSTATE 22007)
 * any batch with a row whose segment_id is in `refuse`. Its read of the letters under
 * lock finds `locked` (an admin's edit, or a letter another transaction holds, between).
 */
function replayDb(letters: Stored[], refuse: string[] = [], locked: Stored[] = letters) {
  const merged: MergedChange[] = [];
  const db = fakeSql((s: Statement) => {
    if (s.text.includes("from sync.dead_letters") && s.text.includes("for update skip locked")) {
      const found = (s.values[0] as string[]).map(Number);
      return locked.filter((l) => found.includes(Number(l.id)));
    }
    // The open letters after `after` (values[0]), of the ids (values[1]) and the table
    // (values[3]; or of no table, from its source table, values[5]) when given, by id,
    // at most `limit` (values[6]).
    const open = (values: unknown[]) =>
      letters.filter((l) =>
        Number(l.id) > Number(values[0]) && !closed().includes(Number(l.id)) &&
        (values[1] === null || (values[1] as number[]).includes(Number(l.id))) &&
        (values[3] === null || l.target_table === values[3] ||
          (l.target_table === null && l.source_table === values[5]))
      );
    if (s.text.includes("order by id") && s.text.includes("limit")) {
      return open(s.values).sort((a, b) => Number(a.id) - Number(b.id))
        .slice(0, Number(s.values[6]));
    }
    if (s.text.includes("as remaining from sync.dead_letters")) {
      return [{ remaining: open(s.values).length }];
    }
    if (s.text.includes("sync.enter_merge(")) return [{}];
    if (s.text.includes("sync.merge_changes")) {
      const changes = JSON.parse(String(s.values[1])) as MergedChange[];
      if (changes.some((c) => refuse.includes(String(c.row.segment_id)))) {
        throw Object.assign(new Error("value out of range"), { code: "22003" });
      }
      merged.push(...changes);
      return [{ applied: changes.length }];
    }
    if (s.text.startsWith("update sync.dead_letters")) return [];
    return undefined;
  });
  const closed = () =>
    db.matching("set replayed_at = now()").flatMap((s) => s.values[0] as number[]);
  const reasons = () =>
    db.matching("replay_result = 'still failing at '").map((s) => [s.values[1], s.values[0]]);
  return { ...db, merged, closed, reasons };
}

/** The replay's merge locks and its lock of the letters, in order. */
function locksThenLetters(db: ReturnType<typeof replayDb>) {
  return db.statements.map((s) =>
    s.text.includes("sync.enter_merge(")
      ? `lock ${s.values[0]}`
      : s.text.includes("for update skip locked")
      ? "letters"
      : undefined
  ).filter(Boolean);
}

Deno.test("the replay takes its tables' merge locks, in name order, before it locks a letter", async () => {
  const db = replayDb([
    stored(1, scanned({ segment_id: { S: "a" } })),
    stored(2, scanned({ segment_id: { S: "b" } }), { target_table: "firespring_actions" }),
  ]);
  await replayDeadLetters(db.sql, {});
  assert.deepEqual(locksThenLetters(db), [
    "lock firespring_actions",
    "lock firespring_segments",
    "letters",
  ]);
});

Deno.test("the replay also locks the table a letter's record maps to now, before any letter", async () => {
  // Kept with no table (its table was registered since), and pointed at another by hand.
  const db = replayDb([
    stored(1, scanned({ segment_id: { S: "a" } }), { target_table: null }),
    stored(2, { sourceTable: "firespring-backdoor-actions-dev", item: { action_id: { S: "x" } } }),
  ]);
  await replayDeadLetters(db.sql, {});
  assert.deepEqual(locksThenLetters(db), [
    "lock firespring_actions",
    "lock firespring_segments",
    "letters",
  ]);
});

Deno.test("a letter edited to another table, or held by another transaction, between the reads is left for the next replay", async () => {
  const letters = [1, 2, 3, 4].map((id) => stored(id, scanned({ segment_id: { S: `k${id}` } })));
  // Letter 2 pointed at the actions table by hand; letter 4 held (skipped).
  const actions = {
    sourceTable: "firespring-backdoor-actions-dev",
    item: { action_id: { S: "x" } },
  };
  const locked = [letters[0], stored(2, actions), letters[2]];
  const db = replayDb(letters, [], locked);
  const result = await replayDeadLetters(db.sql, {});
  assert.deepEqual(locksThenLetters(db), ["lock firespring_segments", "letters"]);
  assert.deepEqual(db.closed(), [1, 3], "only the letters under the locks taken");
  assert.equal(result.considered, 2);
  assert.deepEqual(db.merged.map((c) => c.row.segment_id), ["k1", "k3"]);
  // The cursor stays before the first letter left.
  assert.equal(result.next, 1);
  assert.equal(result.remaining, 2, "letters 2 and 4, still open");
});

Deno.test("what remains counts only the filter's letters", async () => {
  const db = replayDb([
    stored(1, scanned({ segment_id: { S: "a" } })),
    stored(2, { sourceTable: "firespring-backdoor-actions-dev", item: { action_id: { S: "x" } } }, {
      target_table: "firespring_actions",
    }),
  ]);
  const result = await replayDeadLetters(db.sql, { table: "firespring_segments" });
  assert.deepEqual([result.considered, result.remaining, result.next], [1, 0, null]);
  const [counted] = db.matching("as remaining from sync.dead_letters");
  assert.deepEqual(counted.values.slice(3), [
    "firespring_segments",
    "firespring_segments",
    SEGMENTS,
  ]);
});

Deno.test("a table's replay takes its DynamoDB table's letters kept with no table too", async () => {
  const db = replayDb([
    stored(1, scanned({ segment_id: { S: "a" } }), { target_table: null }),
    stored(2, { sourceTable: "firespring-backdoor-actions-dev", item: { action_id: { S: "x" } } }, {
      target_table: null,
      source_table: "firespring-backdoor-actions-dev",
    }),
  ]);
  const result = await replayDeadLetters(db.sql, { table: "firespring_segments" });
  assert.deepEqual([result.considered, result.replayed, result.remaining], [1, 1, 0]);
  assert.deepEqual(db.closed(), [1]);
});

Deno.test("a replay takes at most REPLAY_LIMIT letters and says how many remain and where to go on", async () => {
  const letters = Array.from(
    { length: REPLAY_LIMIT + 2 },
    (_, i) => stored(i + 1, scanned({ segment_id: { S: `k${i + 1}` } })),
  );
  const db = replayDb(letters);
  const first = await replayDeadLetters(db.sql, {});
  assert.deepEqual(
    [first.considered, first.replayed, first.remaining, first.next],
    [REPLAY_LIMIT, REPLAY_LIMIT, 2, REPLAY_LIMIT],
  );
  const rest = await replayDeadLetters(db.sql, { after: first.next! });
  assert.deepEqual([rest.considered, rest.replayed, rest.remaining, rest.next], [2, 2, 0, null]);
  assert.deepEqual(db.closed().slice(-2), [REPLAY_LIMIT + 1, REPLAY_LIMIT + 2]);
});

Deno.test("a change Postgres refused, kept in its wire form, is replayed as it was, every digit kept", async () => {
  const visitors = "firespring-backdoor-visitors-dev";
  const change = {
    op: "delete",
    row: { visitor_id: "v1" },
    seq: null,
    changed_at: "2026-02-01T00:00:00.000Z",
    source: "repair",
    range_key: "RANGE",
    rank: 0,
    seen_at: "2026-02-01T00:00:01.000Z",
  };
  const record = JSON.stringify({
    sourceTable: visitors,
    targetTable: "firespring_visitors",
    change,
  })
    .replace('"RANGE"', "1767225600.123456789012");
  const db = replayDb([stored(5, record, { target_table: "firespring_visitors" })]);
  const result = await replayDeadLetters(db.sql, {});
  assert.equal(result.replayed, 1, JSON.stringify(result.stillFailing));
  const [merge] = db.matching("sync.merge_changes");
  assert.equal(merge.values[0], "firespring_visitors");
  assert.ok(String(merge.values[1]).includes('"range_key":1767225600.123456789012'));
  assert.deepEqual({ ...JSON.parse(String(merge.values[1]))[0], range_key: "RANGE" }, change);
});

Deno.test("a refused change an admin's edit damaged stays open, naming where", async () => {
  const change = { op: "upsert", row: {}, seq: "12x", changed_at: "2026-02-01", source: "repair" };
  const db = replayDb([
    stored(6, { sourceTable: SEGMENTS, targetTable: "firespring_segments", change }),
    stored(7, {
      sourceTable: SEGMENTS,
      targetTable: "firespring_segments",
      change: { ...change, seq: null },
    }),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.deepEqual(result.stillFailing.map((f) => f.reason), [
    'firespring_segments {"segment_id": "k6"}: record is not a change at change.seq: ' +
    "expected a sequence number (digits, as text) or null, not a string",
    "record is not a change of firespring_segments at change.row: its key segment_id is missing",
  ]);
});

Deno.test("a Scan's dead letter is replayed at the position it was read at", async () => {
  const db = replayDb([
    stored(1, scanned({ segment_id: { S: "a" }, value: { N: "5" } })),
    stored(2, scanned({ segment_id: { S: "b" }, blob: { B: "AAE=" } }), {
      position_source: "repair",
      position_at: new Date("2026-02-02T00:00:00Z"),
    }),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.deepEqual(result, {
    considered: 2,
    replayed: 2,
    applied: 2,
    stillFailing: [],
    remaining: 0,
    next: null,
  });
  assert.deepEqual(
    db.merged.map((c) => [c.op, c.row.segment_id, c.changed_at, c.source, c.seq]),
    [
      ["upsert", "a", "2026-02-01T00:00:00.000Z", "backfill", null],
      ["upsert", "b", "2026-02-02T00:00:00.000Z", "repair", null],
    ],
  );
  assert.deepEqual(db.closed(), [1, 2]);
  assert.deepEqual(db.reasons(), []);
  assert.deepEqual(db.transactions, { begun: 1, committed: 1, rolledBack: 0 });
  assert.ok(db.statements.every((s) => s.tx === 1), "all in one transaction");
});

Deno.test("a dead letter without a position is replayed at the time it was received", async () => {
  const db = replayDb([
    stored(4, scanned({ segment_id: { S: "a" } }), { position_at: null, position_source: null }),
  ]);
  await replayDeadLetters(db.sql, {});
  assert.equal(db.merged[0].changed_at, RECEIVED.toISOString());
  assert.equal(db.merged[0].source, "backfill");
});

Deno.test("a stream record is replayed at its own stream position", async () => {
  const db = replayDb([stored(3, streamRecord("s", "4200000000000000000000001"))]);
  const result = await replayDeadLetters(db.sql, {});
  assert.equal(result.replayed, 1);
  const [change] = db.merged;
  assert.equal(change.source, "stream");
  assert.equal(change.seq, "4200000000000000000000001");
  assert.equal(change.changed_at, new Date(1770379200 * 1000).toISOString());
  assert.equal(change.row.member_count, 7);
});

Deno.test("a direct request is replayed at its position, every digit kept", async () => {
  // As the webhook stores it (the parsed body, with its kind), and as an admin may write it.
  const body = '{"kind": "direct", "table": "firespring_segments", "action": "UPSERT", ' +
    '"data": {"segment_id": "d", "value": 12345678901234567890.5}}';
  const bare = body.replace('"kind": "direct", ', "").replace('"d"', '"e"');
  const db = replayDb([
    stored(5, body, { position_source: "direct" }),
    stored(6, bare, { position_source: "direct" }),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.equal(result.replayed, 2, JSON.stringify(result.stillFailing));
  const merge = db.matching("sync.merge_changes")[0];
  assert.match(String(merge.values[1]), /"member_count":12345678901234567890\.5/);
  assert.equal(db.merged[0].source, "direct");
  assert.equal(db.merged[0].changed_at, "2026-02-01T00:00:00.000Z");
});

Deno.test("dead letters of one row are merged one round after another, so that the guard, not the batch, picks", async () => {
  const db = replayDb([
    stored(1, streamRecord("s", "10")),
    stored(2, scanned({ segment_id: { S: "s" }, value: { N: "5" } }), {
      position_at: new Date(1770379200_000 + 10_000),
    }),
    stored(3, scanned({ segment_id: { S: "other" } })),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.equal(result.replayed, 3);
  const merges = db.matching("sync.merge_changes").map((m) =>
    (JSON.parse(String(m.values[1])) as MergedChange[]).map((c) => [c.row.segment_id, c.source])
  );
  assert.deepEqual(merges, [[["s", "stream"], ["other", "backfill"]], [["s", "backfill"]]]);
  assert.deepEqual(db.transactions, { begun: 1, committed: 1, rolledBack: 0 });
});

Deno.test("a record that still does not map stays open with the new reason", async () => {
  const db = replayDb([
    stored(6, scanned({ segment_id: { S: "p" }, value: { N: "abc" } })),
    stored(7, scanned({ segment_id: { S: "ok" } })),
    stored(8, scanned({ segment_id: { S: "q" }, blob: { B: "%%" } })),
    stored(9, { eventID: "ev-9", eventName: "INSERT", eventSourceARN: "arn" }),
    stored(10, scanned({ segment_id: { S: "z\u0000" } })),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.equal(result.considered, 5);
  assert.equal(result.replayed, 1);
  assert.deepEqual(db.closed(), [7]);
  const reasons = new Map(result.stillFailing.map((f) => [f.id, f.reason]));
  assert.deepEqual([...reasons.keys()], [6, 8, 9, 10]);
  assert.match(
    reasons.get(6)!,
    /^firespring-backdoor-segments-dev \[segment_id="p"\]: attribute value/,
  );
  assert.equal(
    reasons.get(8),
    'firespring_segments {"segment_id": "k8"}: record is not a scanned item at item.blob: B must ' +
      "be base64 text",
    "a damaged record's reason names the letter's table and key",
  );
  assert.match(
    reasons.get(9)!,
    /^firespring_segments \{"segment_id": "k9"\}: record is not a stream record at dynamodb: /,
  );
  assert.match(reasons.get(10)!, /U\+0000/);
  // Each one's row gets its new reason; U+0000 is written as text Postgres can store.
  const written = new Map(db.reasons() as [number, string][]);
  assert.equal(written.get(6), reasons.get(6));
  assert.ok(!written.get(10)!.includes("\u0000"));
  assert.ok(written.get(10)!.includes("\\u0000"));
  assert.equal(db.matching("insert into sync.dead_letters").length, 0, "no new dead letters");
});

Deno.test("a record an admin's edit damaged stays open, naming why, and the others are replayed", async () => {
  const db = replayDb([
    stored(21, { sourceTable: SEGMENTS, item: null }),
    stored(22, scanned({ segment_id: { S: "ok" } })),
    stored(23, { sourceTable: SEGMENTS, item: { segment_id: "not an attribute value" } }),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.equal(result.considered, 3);
  assert.deepEqual(db.closed(), [22]);
  const reasons = new Map(result.stillFailing.map((f) => [f.id, f.reason]));
  assert.deepEqual([...reasons.keys()], [21, 23]);
  assert.equal(
    reasons.get(21),
    'firespring_segments {"segment_id": "k21"}: record is not a scanned item at item: expected ' +
      "a map of attribute values, not null",
  );
  assert.match(
    reasons.get(23)!,
    /^firespring_segments \{"segment_id": "k23"\}: record is not a scanned item at item\.segment_id: /,
  );
  assert.deepEqual(db.transactions, { begun: 1, committed: 1, rolledBack: 0 });
});

Deno.test("a direct request an admin's edit left malformed stays open, naming where, and the others are replayed", async () => {
  const direct = (over: Record<string, unknown>) => ({
    table: "firespring_segments",
    action: "UPSERT",
    data: { segment_id: "d" },
    ...over,
  });
  const db = replayDb([
    stored(31, { table: "firespring_segments", action: "UPSERT" }),
    stored(32, direct({ data: null })),
    stored(33, direct({ action: "delete" })),
    stored(34, direct({})),
    stored(35, { records: [] }),
  ]);
  const result = await replayDeadLetters(db.sql, {});
  assert.deepEqual(db.closed(), [34]);
  assert.deepEqual(db.merged.map((c) => [c.op, c.row.segment_id]), [["upsert", "d"]]);
  const reasons = new Map(result.stillFailing.map((f) => [f.id, f.reason]));
  assert.deepEqual([...reasons.keys()], [31, 32, 33, 35]);
  const where = (id: number) => `firespring_segments {"segment_id": "k${id}"}: `;
  assert.ok(reasons.get(31)!.startsWith(`${where(31)}record is not a direct request at data: `));
  assert.match(reasons.get(32)!, /: record is not a direct request at data: .*null/);
  assert.match(reasons.get(33)!, /: record is not a direct request at action: .*"delete"/);
  assert.equal(
    reasons.get(35),
    `${where(35)}record is not a direct request at a dead letter holds one record, not a batch`,
  );
  assert.deepEqual(db.transactions, { begun: 1, committed: 1, rolledBack: 0 });
});

Deno.test("a change Postgres still refuses keeps its own dead letter open, with Postgres's reason", async () => {
  const db = replayDb(
    [
      stored(11, scanned({ segment_id: { S: "good" } })),
      stored(12, scanned({ segment_id: { S: "bad" }, value: { N: "1e100" } })),
    ],
    ["bad"],
  );
  const warn = console.warn;
  console.warn = () => {}; // applyChanges tells the log of each refused change
  let result;
  try {
    result = await replayDeadLetters(db.sql, {});
  } finally {
    console.warn = warn;
  }
  assert.equal(result.replayed, 1);
  assert.equal(result.applied, 1);
  assert.deepEqual(db.closed(), [11]);
  assert.equal(result.stillFailing.length, 1);
  assert.equal(result.stillFailing[0].id, 12);
  assert.equal(
    result.stillFailing[0].reason,
    'firespring_segments [segment_id="bad"]: Postgres refused the change: value out of range ' +
      "(SQLSTATE 22003)",
  );
  assert.deepEqual(db.reasons(), [[12, result.stillFailing[0].reason]]);
  assert.equal(db.matching("insert into sync.dead_letters").length, 0, "no second dead letter");
});

Deno.test("the filter reaches the query: ids, table, or neither", async () => {
  for (
    const [filter, values] of [
      [{}, [0, null, null, null, null, null, REPLAY_LIMIT]],
      [{ ids: [3, 4] }, [0, [3, 4], [3, 4], null, null, null, REPLAY_LIMIT]],
      [{ table: "firespring_segments", after: 9 }, [
        9,
        null,
        null,
        "firespring_segments",
        "firespring_segments",
        SEGMENTS,
        REPLAY_LIMIT,
      ]],
    ] as [ReplayFilter, unknown[]][]
  ) {
    const db = replayDb([]);
    const result = await replayDeadLetters(db.sql, filter);
    assert.deepEqual(result, {
      considered: 0,
      replayed: 0,
      applied: 0,
      stillFailing: [],
      remaining: 0,
      next: null,
    });
    const [select] = db.matching("from sync.dead_letters");
    assert.deepEqual(select.values, values);
    assert.match(select.text, /where replayed_at is null/);
  }
});

// The endpoint.

const KEY = "service-key";

function replayRequest(
  body: string | null,
  options: { method?: string; key?: string | null } = {},
): Request {
  const key = options.key === undefined ? KEY : options.key;
  return new Request("http://localhost/mmp-toledo-sync/replay-dead-letters", {
    method: options.method ?? "POST",
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
    body,
  });
}

async function answer(response: Response) {
  return { status: response.status, body: await response.json() };
}

Deno.test("the endpoint answers 405 to anything but POST, with Allow", async () => {
  const db = replayDb([]);
  for (const method of ["GET", "PUT", "DELETE"]) {
    const response = await handleReplayRequest(
      replayRequest(method === "GET" ? null : "{}", { method }),
      { sql: db.sql, serviceRoleKey: KEY },
    );
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get("allow"), "POST");
    assert.deepEqual(await response.json(), { error: "method not allowed: use POST" });
  }
  assert.equal(db.statements.length, 0);
});

Deno.test("the endpoint answers 401 without the service key, touching nothing", async () => {
  const db = replayDb([]);
  const missing = await answer(
    await handleReplayRequest(replayRequest("{}", { key: null }), {
      sql: db.sql,
      serviceRoleKey: KEY,
    }),
  );
  assert.equal(missing.status, 401);
  assert.match(missing.body.error, /missing Authorization/);
  const wrong = await answer(
    await handleReplayRequest(replayRequest("{}", { key: "other" }), {
      sql: db.sql,
      serviceRoleKey: KEY,
    }),
  );
  assert.equal(wrong.status, 401);
  assert.match(wrong.body.error, /not a service key/);
  assert.equal(db.statements.length, 0);
});

Deno.test("the endpoint answers 400 for a body that is not a filter, saying where", async () => {
  const db = replayDb([]);
  const cases: [string, RegExp][] = [
    ["{not json", /^body is not valid JSON: /],
    ['{"ids": [0]}', /^malformed filter at ids\.0: /],
    ['{"ids": [1.5]}', /^malformed filter at ids\.0: /],
    ['{"ids": "1"}', /^malformed filter at ids: /],
    ['{"table": ""}', /^malformed filter at table: /],
    ['{"tables": ["x"]}', /^malformed filter at \(the body\): .*tables/],
    [
      '{"table": "firespring-backdoor-segments-dev"}',
      /^malformed filter at table: "firespring-backdoor-segments-dev" is not a target table \(one of .*firespring_segments/,
    ],
    ["[]", /^malformed filter at \(the body\): /],
  ];
  for (const [body, expected] of cases) {
    const { status, body: json } = await answer(
      await handleReplayRequest(replayRequest(body), { sql: db.sql, serviceRoleKey: KEY }),
    );
    assert.equal(status, 400, body);
    assert.match(json.error, expected, body);
  }
  assert.equal(db.statements.length, 0);
});

Deno.test("the endpoint replays with the filter and answers the result; an empty body means all", async () => {
  for (const body of ["", "  ", "{}", '{"ids": [1]}']) {
    const db = replayDb([stored(1, scanned({ segment_id: { S: "a" } }))]);
    const { status, body: json } = await answer(
      await handleReplayRequest(replayRequest(body), { sql: db.sql, serviceRoleKey: KEY }),
    );
    assert.equal(status, 200, body);
    assert.deepEqual(json, {
      considered: 1,
      replayed: 1,
      applied: 1,
      stillFailing: [],
      remaining: 0,
      next: null,
    });
  }
});

Deno.test("after the cutover the endpoint answers 409 with the cause, every letter staying open", async () => {
  const cut = fakeSql(() => {
    throw Object.assign(
      new Error(
        "the sync is cut over (sync.settings write_back is cutover): Supabase is the source of truth",
      ),
      { code: "SY005" },
    );
  });
  const response = await handleReplayRequest(replayRequest("{}"), {
    sql: cut.sql,
    serviceRoleKey: KEY,
  });
  assert.equal(response.status, 409);
  assert.match(
    (await response.json()).error,
    /^the sync is cut over .*; no dead letter was replayed$/,
  );
});

Deno.test("the endpoint answers 503 with Retry-After when the database is down", async () => {
  const down = fakeSql(() => {
    throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
      code: "ECONNREFUSED",
    });
  });
  const response = await handleReplayRequest(replayRequest("{}"), {
    sql: down.sql,
    serviceRoleKey: KEY,
  });
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "5");
  assert.deepEqual(await response.json(), {
    error: "the database is unavailable; retry later",
  });
});

Deno.test("the endpoint answers a statement that timed out 503, any other failure a 500 naming its cause", async () => {
  const slow = fakeSql(() => {
    throw Object.assign(new Error("canceling statement due to statement timeout"), {
      code: "57014",
    });
  });
  const late = await handleReplayRequest(replayRequest("{}"), {
    sql: slow.sql,
    serviceRoleKey: KEY,
  });
  assert.equal(late.status, 503);
  assert.equal(late.headers.get("retry-after"), "5");
  assert.deepEqual(await late.json(), {
    error: "the replay could not run now (57014); nothing was replayed, retry later",
  });
  const readOnly = await handleReplayRequest(replayRequest("{}"), {
    sql: fakeSql(() => {
      throw Object.assign(new Error("cannot execute INSERT in a read-only transaction"), {
        code: "25006",
      });
    }).sql,
    serviceRoleKey: KEY,
  });
  assert.equal(readOnly.status, 503);
  assert.equal(readOnly.headers.get("x-sync-refusal"), "read-only");
  assert.equal(readOnly.headers.get("retry-after"), "60");
  assert.match(
    (await readOnly.json()).error,
    /^the database is read-only \(25006; .*disk is nearly full.*; nothing was replayed, retry later$/,
  );
  const broken = fakeSql(() => {
    throw Object.assign(new Error('relation "sync.dead_letters" does not exist'), {
      code: "42P01",
    });
  });
  const failed = await handleReplayRequest(replayRequest("{}"), {
    sql: broken.sql,
    serviceRoleKey: KEY,
  });
  assert.equal(failed.status, 500);
  assert.deepEqual(await failed.json(), {
    error: 'the dead-letter replay failed: relation "sync.dead_letters" does not exist (42P01); ' +
      "nothing was replayed",
  });
});
