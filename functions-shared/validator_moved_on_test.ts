/**
 * The last look's keys moved on (validator_moved_on.ts), through the looks with a fake
 * database (validator_fakes.ts): a key the stream changed after the look read it is left
 * out, one it did not is reported, the reads' bounds kept over the look's requests, and
 * collapsed tables never use the rule.
 */

import assert from "node:assert/strict";
import { byTargetTable } from "./table_registry.ts";
import { compareSlices } from "./validator_compare.ts";
import { compareDeps as deps, comparingRun as comparing, runsDb } from "./validator_fakes.ts";
import { recheckLook } from "./validator_looks.ts";
import { MOVED_ON_PAUSES } from "./validator_moved_on.ts";
import { fakeDynamo, type SentCommand } from "./testing_fakes.ts";

const segments = byTargetTable("firespring_segments")!;
const key = (id: string) => ({ segment_id: id });

/** A source whose every point read finds its key, answered with DynamoDB's `Date` at `serverMs`. */
const datedSource = (serverMs: number) =>
  fakeDynamo((c: SentCommand) => ({
    Item: { ...(c.input.Key as object), value: { N: "1" } },
    $metadata: { clock: { serverMs, roundTripMs: 5 } },
  })).dynamo;

/**
 * The looks' dependencies over `db` with a source answered at `serverMs`, a settle pause
 * of a second, and the pauses and log lines they make, recorded.
 */
function datedDeps(db: ReturnType<typeof runsDb>, serverMs: number) {
  const pauses: number[] = [];
  const lines: string[] = [];
  const d = {
    ...deps(db),
    dynamo: datedSource(serverMs),
    settleMs: 1_000,
    pause: (ms: number) => (pauses.push(ms), Promise.resolve()),
    log: (line: string) => lines.push(line),
  };
  return { d, pauses, lines };
}

Deno.test("the last look leaves out a key the stream changed after it was read; one it did not change is reported", async () => {
  // Both differ at every compare: "hot" changes faster than the stream lags, "lost" lost a
  // change. The reads' answers carry DynamoDB's Date (truncated to the second).
  const serverMs = Date.parse("2026-12-01T10:00:07Z");
  const asked: { keys: string[]; since: string }[] = [];
  const db = runsDb({
    divergent: () => [
      { kind: "different" as const, key: key("hot") },
      { kind: "different" as const, key: key("lost") },
    ],
    movedOn: (keys, since) => {
      asked.push({ keys: keys.map((k) => String(k.segment_id)), since });
      return keys.filter((k) => k.segment_id === "hot");
    },
  });
  const run = comparing(db);
  const { d, pauses, lines } = datedDeps(db, serverMs);
  await compareSlices(d, 7, "w1", () => false);
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "recheck");
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "recheck");
  assert.equal(asked.length, 0, "the first looks report no key, and ask nothing");
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "report");
  assert.deepEqual(run.different, [key("lost")], "only the key the stream did not move on");
  assert.deepEqual(
    asked,
    [
      { keys: ["hot", "lost"], since: "2026-12-01T10:00:04.995Z" },
      { keys: ["hot"], since: "2026-12-01T10:00:08.000Z" },
    ],
    "which keys the stream is changing (since the reads began, less 2 s), then which of those it changed after the reads (a second after their Date)",
  );
  assert.deepEqual(pauses.slice(-1), [1_000], "one settle pause: the key left out after it");
  assert.ok(
    lines.some((l) => l.includes("1 of the keys that still differ were changed by the stream")),
  );
});

Deno.test("reads whose answers carry no Date give no bound: every key that still differs is reported", async () => {
  let asked = 0;
  const db = runsDb({
    divergent: () => [{ kind: "different" as const, key: key("hot") }],
    movedOn: (keys) => (asked++, keys),
  });
  const run = comparing(db);
  const d = deps(db);
  await compareSlices(d, 7, "w1", () => false);
  for (let look = 0; look < 3; look++) await recheckLook(d, segments, 7, "w1", 200);
  assert.deepEqual(run.different, [key("hot")]);
  assert.equal(asked, 0);
});

Deno.test("a key the stream changes but not past the reads is waited for, then reported; one it leaves alone is reported with no wait", async () => {
  const serverMs = Date.parse("2026-12-01T10:00:07Z");
  const readBefore = "2026-12-01T10:00:08.000Z";
  const db = runsDb({
    divergent: () => [
      { kind: "different" as const, key: key("slow") },
      { kind: "missing" as const, key: key("lost") },
    ],
    // "slow" was written just before the reads, and not since: moving, never moved on.
    movedOn: (keys, since) =>
      since === readBefore ? [] : keys.filter((k) => k.segment_id === "slow"),
  });
  const run = comparing(db);
  const { d, pauses } = datedDeps(db, serverMs);
  await compareSlices(d, 7, "w1", () => false);
  for (let look = 0; look < 3; look++) await recheckLook(d, segments, 7, "w1", 200);
  assert.deepEqual([run.different, run.missing], [[key("slow")], [key("lost")]]);
  assert.deepEqual(
    pauses.slice(-MOVED_ON_PAUSES),
    Array(MOVED_ON_PAUSES).fill(1_000),
    "the moving key waited for every pause",
  );
  const compared = db.matching("from sync.compare_checksum(").slice(-MOVED_ON_PAUSES)
    .map((s) =>
      (JSON.parse(String(s.values[2])) as { segment_id: string }[]).map((k) => k.segment_id)
    );
  assert.deepEqual(compared, Array(MOVED_ON_PAUSES).fill(["slow"]), "the key left alone was not");
});

Deno.test("a last look that hands on after its reads still leaves out a key the stream moved on, by the bounds its reads stored", async () => {
  const serverMs = Date.parse("2026-12-01T10:00:07Z");
  const asked: string[] = [];
  const db = runsDb({
    divergent: () => [{ kind: "different" as const, key: key("hot") }],
    movedOn: (keys, since) => (asked.push(since), keys),
  });
  const run = comparing(db);
  const d = {
    ...deps(db),
    dynamo: datedSource(serverMs),
  };
  await compareSlices(d, 7, "w1", () => false);
  await recheckLook(d, segments, 7, "w1", 200);
  await recheckLook(d, segments, 7, "w1", 200);
  // The last look: its one request reads the key, then its budget is spent.
  assert.equal(await recheckLook(d, segments, 7, "w1", 200, () => true), "budget");
  assert.equal(run.recheckReadBefore, "2026-12-01T10:00:08.000Z", "the bound kept with the reads");
  assert.equal(asked.length, 0);
  // The next request reads nothing: the stored bounds serve.
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "report");
  assert.deepEqual(run.different, []);
  assert.deepEqual(asked, ["2026-12-01T10:00:04.995Z", "2026-12-01T10:00:08.000Z"]);
  assert.equal(run.recheckReadBefore, null, "cleared with the look");
});

Deno.test("a collapsed table's keys are asked of its own check, with the run that read them, and left out when it finds them moved on", async () => {
  const visitors = byTargetTable("firespring_visitors")!;
  const runs: (number | undefined)[] = [];
  const db = runsDb({
    divergent: () => [
      { kind: "different" as const, key: { visitor_id: "v" } },
      { kind: "different" as const, key: { visitor_id: "w" } },
    ],
    // "v"'s row was written from the stream after the read, from an item ranked at least
    // as the look read (sync.collapsed_keys_changed_since); "w"'s was not.
    movedOn: (keys, _since, run) => (runs.push(run), keys.filter((k) => k.visitor_id === "v")),
  });
  const run = db.newRun("firespring_visitors", false, 1, 7);
  run.phase = "compare";
  run.leaseOwner = "w1";
  const d = {
    ...deps(db),
    dynamo: fakeDynamo(() => ({
      Items: [{ session_id: { S: "v" }, timestamp: { N: "1" } }],
      $metadata: { clock: { serverMs: Date.parse("2026-12-01T10:00:07Z"), roundTripMs: 5 } },
    })).dynamo,
  };
  await compareSlices(d, 7, "w1", () => false);
  for (let look = 0; look < 3; look++) await recheckLook(d, visitors, 7, "w1", 200);
  assert.deepEqual(run.different, [{ visitor_id: "w" }]);
  assert.ok(runs.length > 0 && runs.every((r) => r === 7), "asked with the run's id");
});
