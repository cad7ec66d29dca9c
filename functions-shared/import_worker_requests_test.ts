import assert from "node:assert/strict";
import type { RunResult } from "./backfill_worker.ts";
import { type ImportWorkerDeps, importWorkerHandler } from "./import_worker_requests.ts";
import { RunGate } from "./run_gate.ts";
import { RequestTally } from "./request_tally.ts";

const KEY = "service-key";
const post = (key = KEY) =>
  new Request("http://localhost/import-worker", {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
  });
const result = (stoppedBy: RunResult["stoppedBy"]): RunResult => ({
  segmentsFinished: 0,
  pages: 2,
  items: 20,
  rows: 20,
  stoppedBy,
  resumed: 1,
  handedOn: stoppedBy === "budget" ? "backfill job 7 segment 1/4 of t: budget spent" : undefined,
});

/** A handler whose runs and background work the test drives. */
function handler(run: ImportWorkerDeps["run"], gate = new RunGate(1)) {
  const background: Promise<unknown>[] = [];
  const lines: string[] = [];
  const calls: number[] = [];
  // A clock that stands still and no timer: the tally says nothing until the test flushes it.
  const tally = new RequestTally(
    "import-worker",
    (line) => lines.push(line),
    () => 0,
    () => () => {},
  );
  const handle = importWorkerHandler({
    serviceKeys: [KEY],
    gate,
    run,
    callSelf: () => {
      // When the function calls itself, the run's place must be free again.
      calls.push(gate.active);
      return Promise.resolve();
    },
    waitUntil: (work) => void background.push(work),
    tally,
    logError: (line) => lines.push(`ERROR ${line}`),
    newWorker: () => "w1",
  });
  return { handle, background, lines, calls, gate, tally };
}

Deno.test("a run that stops for its budget hands on once its place in the isolate is free", async () => {
  const { handle, background, calls, lines, tally } = handler(async (_worker, handOn) => {
    await handOn();
    return result("budget");
  });
  const answer = handle(post());
  assert.equal(answer.status, 202);
  assert.deepEqual(await answer.json(), { accepted: true, worker: "w1" });
  await Promise.all(background);
  assert.deepEqual(calls, [0], "called itself once, with no run holding a place");
  assert.deepEqual(lines, [], "counted, not logged: the isolate says its runs every 10 s");
  tally.flush();
  assert.deepEqual(lines, [
    "import-worker: this isolate's last 0.0 s: 1 request (1 stopped by their budget), 2 pages, " +
    "20 items, 20 rows, 1 segment resumed from a checkpoint; " +
    "the last handed on: backfill job 7 segment 1/4 of t: budget spent",
  ]);
});

Deno.test("a run that ends with no work left does not call itself, and is counted", async () => {
  const { handle, background, calls, lines, tally } = handler(() =>
    Promise.resolve(result("no work"))
  );
  handle(post());
  await Promise.all(background);
  assert.deepEqual(calls, []);
  tally.flush();
  assert.match(lines.join("\n"), /1 request \(1 with no work left\), 2 pages/);
});

Deno.test("a run that fails is logged, and its promise never rejects: the isolate's other runs go on", async () => {
  const { handle, background, lines, gate, tally } = handler(() =>
    Promise.reject(new Error("backfill job 7 segment 1/4 of t: connection reset"))
  );
  handle(post());
  const settled = await Promise.allSettled(background);
  assert.deepEqual(settled.map((s) => s.status), ["fulfilled"]);
  assert.deepEqual(lines, [
    "ERROR w1: stopped by an error: Error: backfill job 7 segment 1/4 of t: connection reset",
  ], "an error is logged at once");
  tally.flush();
  assert.match(lines[1], /1 request \(1 failed\), 0 pages/);
  assert.equal(gate.active, 0, "its place is given back");
});

Deno.test("a busy isolate takes no more runs, and says so", async () => {
  let finish: (r: RunResult) => void = () => {};
  const { handle, background } = handler(() => new Promise<RunResult>((r) => (finish = r)));
  assert.equal(handle(post()).status, 202);
  const second = handle(post());
  assert.equal(second.status, 202);
  assert.deepEqual(await second.json(), {
    accepted: false,
    reason: "this isolate already runs 1",
  });
  finish(result("no work"));
  await Promise.all(background);
});

Deno.test("only a POST with a service key starts a run", async () => {
  let runs = 0;
  const { handle } = handler(() => {
    runs++;
    return Promise.resolve(result("no work"));
  });
  assert.equal(handle(new Request("http://localhost/import-worker")).status, 405);
  const refused = handle(post("not-the-key"));
  assert.equal(refused.status, 401);
  assert.match(await refused.text(), /not a service key of this project/);
  assert.equal(runs, 0);
});
