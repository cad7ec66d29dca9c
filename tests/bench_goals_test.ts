import assert from "node:assert/strict";
import { formatted, Goals, met } from "./bench_goals.ts";

Deno.test("a goal is met below a ceiling or above a floor, and the table says so, with its floor", () => {
  const goals = new Goals();
  goals.add({
    path: "webhook, batches of 10",
    now: "3,000/s",
    raw: "9,000/s",
    ratio: 3,
    kind: "max",
    target: 3,
    floor: { ratio: 2.5, what: "a refused post, then the upsert" },
  });
  goals.add({
    path: "collapsed vs plain",
    now: "900/s",
    raw: "1,500/s",
    ratio: 0.6,
    kind: "min",
    target: 0.7,
  });
  goals.add({
    path: "live path",
    now: "p50 180 ms, p90 264 ms",
    raw: "—",
    ratio: 264.4,
    unit: "ms",
    kind: "max",
    target: 300,
  });
  assert.deepEqual(goals.all.map(met), [true, false, true]);
  const lines = goals.table().split("\n");
  assert.equal(lines.length, 5);
  assert.equal(
    lines[2],
    "| webhook, batches of 10 | 3,000/s | 9,000/s | 3.00× | ≤ 3 | yes | 2.50× (a refused post, then the upsert) |",
  );
  assert.equal(lines[3], "| collapsed vs plain | 900/s | 1,500/s | 0.60× | ≥ 0.7 | no | — |");
  assert.equal(
    lines[4],
    "| live path | p50 180 ms, p90 264 ms | — | 264 ms | ≤ 300 ms | yes | — |",
  );
});

Deno.test("numbers are printed with thousands separators", () => {
  assert.equal(formatted(12345.678), "12,346");
  assert.equal(formatted(2.345, 1), "2.3");
});
