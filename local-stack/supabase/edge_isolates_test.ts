import assert from "node:assert/strict";
import { type IsolateLine, IsolatePool, type IsolateProcess } from "./edge_isolates.ts";

/** A pool over fake processes and a fake clock. */
function fakePool() {
  let now = Date.parse("2026-11-28T10:00:00Z");
  const lines: IsolateLine[] = [];
  const events: string[] = [];
  const pool = new IsolatePool("fn", {
    now: () => now,
    record: (line) => lines.push(line),
    spawn: (id): IsolateProcess => ({
      pid: 1000 + id,
      port: 2000 + id,
      ready: Promise.resolve(true),
      exited: new Promise(() => {}),
      drain: () => events.push(`drain ${id}`),
      kill: () => events.push(`kill ${id}`),
    }),
  });
  return { pool, lines, events, tick: (ms: number) => (now += ms) };
}

Deno.test("one isolate serves several requests, started on demand", () => {
  const { pool } = fakePool();
  assert.equal(pool.live().length, 0);
  const a = pool.acquire();
  const b = pool.acquire();
  assert.equal(a, b);
  assert.equal(a.requests, 2);
  assert.equal(a.inFlight, 2);
  pool.release(a);
  assert.equal(pool.acquire(), a);
});

Deno.test("a retired isolate takes nothing new; a new isolate does; it drains when done", () => {
  const { pool, events, lines, tick } = fakePool();
  const first = pool.acquire();
  pool.retire(first, "retired: cpu soft limit");
  // Its request is still in flight: it is not drained yet.
  assert.deepEqual(events, []);
  const second = pool.acquire();
  assert.notEqual(second, first);
  assert.equal(second.process.pid, 1002);
  pool.release(first);
  assert.deepEqual(events, ["drain 1"]);
  // Still routed to the new one.
  assert.equal(pool.acquire(), second);
  first.cpuMs = 1012.4;
  tick(1500);
  pool.ended(first, 0);
  assert.deepEqual(lines, [{
    function: "fn",
    isolate: 1,
    pid: 1001,
    started_at: "2026-11-28T10:00:00.000Z",
    ended_at: "2026-11-28T10:00:01.500Z",
    requests: 1,
    cpu_ms: 1012,
    wall_ms: 1500,
    reason: "retired: cpu soft limit",
  }]);
  assert.deepEqual(pool.live(), [second]);
});

Deno.test("a killed isolate is recorded with the hosted reason and takes nothing new", () => {
  const { pool, events, lines } = fakePool();
  const isolate = pool.acquire();
  pool.kill(isolate, "CPUTime");
  assert.deepEqual(events, ["kill 1"]);
  assert.notEqual(pool.acquire(), isolate);
  pool.release(isolate);
  pool.ended(isolate, 137);
  pool.ended(isolate, 137);
  assert.equal(lines.length, 1);
  assert.equal(lines[0].reason, "CPUTime");
});

Deno.test("an idle isolate is drained; a busy one is not; stop ends every one", () => {
  const { pool, events, lines, tick } = fakePool();
  const idle = pool.acquire();
  pool.release(idle);
  tick(60_000);
  pool.retireIdle(0);
  assert.deepEqual(events, []);
  pool.retireIdle(60_000);
  assert.deepEqual(events, ["drain 1"]);
  const busy = pool.acquire();
  tick(60_000);
  pool.retireIdle(60_000);
  assert.deepEqual(events, ["drain 1"]);
  pool.stop(busy);
  assert.deepEqual(events, ["drain 1", "kill 2"]);
  pool.ended(idle, 0);
  pool.ended(busy, 143);
  assert.deepEqual(lines.map((l) => l.reason), ["idle", "stopped"]);
});

Deno.test("an isolate that does not start is stopped and takes nothing new", () => {
  const { pool, events, lines } = fakePool();
  const isolate = pool.acquire();
  pool.release(isolate);
  pool.stop(isolate, "boot failed");
  assert.deepEqual(events, ["kill 1"]);
  assert.notEqual(pool.acquire(), isolate);
  pool.ended(isolate, 137);
  assert.equal(lines[0].reason, "boot failed");
});

Deno.test("an isolate that exits on its own says so", () => {
  const { pool, lines } = fakePool();
  const isolate = pool.acquire();
  pool.ended(isolate, 1);
  assert.equal(lines[0].reason, "exited with code 1");
});

Deno.test("a successor started ahead takes requests only once the current isolate retires", () => {
  const { pool } = fakePool();
  const current = pool.acquire();
  pool.prepareSuccessor();
  pool.prepareSuccessor();
  assert.equal(pool.live().length, 2, "one successor at a time");
  const successor = pool.live()[1];
  assert.equal(successor.successor, true);
  assert.equal(pool.acquire(), current, "the current isolate keeps the requests");
  assert.equal(successor.requests, 0);
  pool.retire(current, "retired: cpu soft limit");
  assert.equal(pool.acquire(), successor, "then the successor, already booted, takes them");
  assert.equal(successor.successor, false);
  assert.equal(pool.live().length, 2, "no isolate started for it");
});

Deno.test("a successor never needed ends as idle, with no request", () => {
  const { pool, events, tick } = fakePool();
  pool.release(pool.acquire());
  pool.prepareSuccessor();
  tick(60_000);
  pool.retireIdle(60_000);
  assert.deepEqual(events, ["drain 1", "drain 2"]);
  assert.equal(pool.live()[1].retired, "idle");
});
