import assert from "node:assert/strict";
import { RunGate } from "./run_gate.ts";
import { wakeHourOf, wakeKeyOf } from "./service_auth.ts";
import {
  handleStreamCheckRequest,
  MAX_HAND_ONS,
  RUNS_PER_ISOLATE,
} from "./stream_check_requests.ts";
import {
  type CheckRow,
  checksDb,
  deps,
  fakeStream,
  KEY,
  meter,
  post,
} from "./stream_check_test_utils.ts";

const NOW = Date.parse("2026-11-29T12:00:00Z");
const ARN = "arn:aws:dynamodb:us-east-1:1:table/firespring-backdoor-segments-dev/stream/1";

/** A table checked a minute ago, with a shard of ten records to read after its last run's. */
function busyTable() {
  const rows = new Map<string, CheckRow>([["firespring_segments", {
    stream_arn: ARN,
    checked_at: new Date(NOW - 60_000),
    shards: { s1: { through: "100", readAt: new Date(NOW - 60_000).toISOString() } },
  }]]);
  const { reader } = fakeStream({ s1: { from: 101, to: 110 } }, NOW);
  const handedOn: unknown[] = [];
  const waited: Promise<unknown>[] = [];
  const lines: string[] = [];
  const extra = {
    sql: checksDb(rows, () => NOW).sql,
    cpu: meter(0),
    now: () => NOW,
    streamArnOf: () => Promise.resolve(ARN),
    readerOf: () => reader,
    waitUntil: (work: Promise<unknown>) => void waited.push(work),
    callSelf: (body: unknown) => Promise.resolve(void handedOn.push(body)),
    log: (line: string) => void lines.push(line),
  };
  return { rows, handedOn, waited, lines, extra };
}

Deno.test("refusals: 405 not POST, 401 no key, 400 bad body, unknown table or bad link, each saying why", async () => {
  const get = await handleStreamCheckRequest(new Request("http://localhost/"), deps());
  assert.equal(get.status, 405);
  assert.equal((await handleStreamCheckRequest(post("{}", "wrong"), deps())).status, 401);
  const notJson = await handleStreamCheckRequest(post("{"), deps());
  assert.equal(notJson.status, 400);
  assert.match((await notJson.json()).error, /not valid JSON/);
  const unknown = await handleStreamCheckRequest(post('{"tables": ["nope"]}'), deps());
  assert.equal(unknown.status, 400);
  assert.match((await unknown.json()).error, /unknown target table\(s\): nope/);
  // What would have read as "every table": not an object, the validator's shape, no table.
  for (
    const [body, why] of [
      ['"hello"', /the body must be an object/],
      ["[1, 2]", /the body must be an object/],
      ['{"table": "firespring_actions"}', /unknown key\(s\) "table"/],
      ['{"tables": []}', /tables must be a list of target table names/],
    ] as const
  ) {
    const refused = await handleStreamCheckRequest(post(body), deps());
    assert.equal(refused.status, 400, body);
    assert.match((await refused.json()).error, why);
  }
  for (const handOn of [-1, 1.5, "2", MAX_HAND_ONS + 1]) {
    const refused = await handleStreamCheckRequest(post(JSON.stringify({ handOn })), deps());
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error, /handOn must be a whole number from 0 to 100/);
  }
  for (const body of [{ handOn: 1, since: "yesterday" }, { since: "2026-11-29T12:00:00.000Z" }]) {
    const refused = await handleStreamCheckRequest(post(JSON.stringify(body)), deps());
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error, /since must be a time in ISO 8601 .* of a hand-on/);
  }
});

Deno.test("a wake key starts one check; a hand-on, a chain of up to 100 runs, takes a service key", async () => {
  // pg_net's queue, where pg_cron's wake key waits, is readable by every database role.
  const wake = wakeKeyOf(KEY, wakeHourOf(Date.now()));
  for (const body of [{ handOn: 1 }, { handOn: 1, since: new Date().toISOString() }]) {
    const refused = await handleStreamCheckRequest(post(JSON.stringify(body), wake), deps());
    assert.equal(refused.status, 403, JSON.stringify(body));
    assert.match((await refused.json()).error, /a wake key \(pg_cron's\) may only start one check/);
  }
  const { extra, handedOn } = busyTable();
  const one = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}', wake),
    deps(extra),
  );
  assert.equal(one.status, 200);
  assert.deepEqual(handedOn, []);
});

Deno.test("a run that leaves work answers with it and hands it on to a new request", async () => {
  const { rows, handedOn, waited, extra } = busyTable();
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    deps({ ...extra, budget: { runCpuMs: 1, wallMs: 60_000 } }),
  );
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.deepEqual(body.left, ["firespring_segments"]);
  assert.equal(body.handedOn, true);
  await Promise.all(waited);
  assert.deepEqual(handedOn, [{
    tables: ["firespring_segments"],
    handOn: 1,
    since: new Date(NOW).toISOString(),
  }]);
  assert.equal(rows.get("firespring_segments")!.shards.s1.through, "101");
});

Deno.test("a hand-on is answered 202 and runs in the background; a busy isolate answers it 503", async () => {
  const { rows, handedOn, waited, extra } = busyTable();
  const handOnDeps = deps({ ...extra, gate: new RunGate(1) });
  const request = () => post('{"tables": ["firespring_segments"], "handOn": 7}');
  const accepted = await handleStreamCheckRequest(request(), handOnDeps);
  assert.equal(accepted.status, 202);
  assert.deepEqual(await accepted.json(), { accepted: true });
  const busy = await handleStreamCheckRequest(request(), handOnDeps);
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("retry-after"), "1");
  assert.match((await busy.json()).error, /this isolate already runs 1 lost-record checks/);
  const person = await handleStreamCheckRequest(post("{}"), handOnDeps);
  assert.equal(person.status, 429, "a request not handed on is told at once");
  await Promise.all(waited);
  // Its whole allowance read the shard to its end: nothing left, no successor.
  assert.deepEqual(handedOn, []);
  assert.equal(rows.get("firespring_segments")!.shards.s1.through, "110");
});

Deno.test("a chain of hand-ons ends at its limit, saying so", async () => {
  const { handedOn, waited, lines, extra } = busyTable();
  const body = JSON.stringify({ tables: ["firespring_segments"], handOn: MAX_HAND_ONS });
  const last = deps({ ...extra, budget: { runCpuMs: 1, wallMs: 60_000 } });
  assert.equal((await handleStreamCheckRequest(post(body), last)).status, 202);
  await Promise.all(waited);
  assert.deepEqual(handedOn, []);
  assert.ok(
    lines.includes(
      `stream-check: ${MAX_HAND_ONS} runs in a row left firespring_segments unfinished; ` +
        `the next hourly run reads on`,
    ),
    lines.join("\n"),
  );
});

Deno.test("a handed-on run that fails is logged with its cause", async () => {
  const { waited, lines, extra } = busyTable();
  const failing = deps({
    ...extra,
    // The run's own first statement fails, and so does the log of that: the run throws.
    log: (line) => {
      if (line.includes("could not be read")) throw new Error("the log is gone");
      lines.push(line);
    },
    sql: Object.assign(() => Promise.reject(new Error("connection refused")), {
      unsafe: () => Promise.reject(new Error("connection refused")),
    }) as never,
  });
  const response = await handleStreamCheckRequest(post('{"handOn": 1}'), failing);
  assert.equal(response.status, 202);
  await Promise.all(waited);
  assert.deepEqual(lines, ["stream-check: a handed-on run stopped: the log is gone"]);
});

Deno.test("an isolate takes two runs, so that the hourly run is not turned away by a chain's", async () => {
  const { waited, extra } = busyTable();
  const gate = new RunGate(RUNS_PER_ISOLATE);
  const both = deps({ ...extra, gate });
  const chain = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"], "handOn": 3}'),
    both,
  );
  assert.equal(chain.status, 202);
  const hourly = await handleStreamCheckRequest(post('{"tables": ["firespring_segments"]}'), both);
  assert.equal(hourly.status, 200);
  await Promise.all(waited);
});

Deno.test("a run whose every table failed for want of the database answers 503, with the report", async () => {
  const refused = () =>
    Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
  const down = deps({
    sql: Object.assign(refused, { unsafe: refused }) as never,
    log: () => {},
  });
  const response = await handleStreamCheckRequest(
    post('{"tables": ["firespring_segments"]}'),
    down,
  );
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "5");
  const body = await response.json();
  assert.equal(body.error, "the database is unavailable; retry later");
  assert.equal(body.checked[0].table, "firespring_segments");
  assert.match(body.checked[0].error, /ECONNREFUSED/);
});
