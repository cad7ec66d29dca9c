import assert from "node:assert/strict";
import { ReadPacer, ScanGaveUp, segmentBudget, withBackoff } from "./scan_pacing.ts";
import { fakeClock } from "./testing_fakes.ts";

const named = (name: string) => Object.assign(new Error(`${name} happened`), { name });

Deno.test("the table's budget is shared by the job's segments", () => {
  assert.equal(segmentBudget(300, 4), 75);
  assert.equal(segmentBudget(300, 0), 300);
});

Deno.test("pages wait so that the units spent stay within the budget", async () => {
  const clock = fakeClock();
  const pacer = new ReadPacer(100, clock);
  await pacer.wait();
  assert.deepEqual(clock.slept, []);
  pacer.spent(50); // half a second's worth
  await pacer.wait();
  assert.deepEqual(clock.slept, [500]);
  pacer.spent(200);
  await pacer.wait();
  assert.deepEqual(clock.slept, [500, 2000]);
  assert.equal(clock.now(), 2500); // 250 units in 2.5 s: 100 per second
});

Deno.test("a read is booked from when it started: its own latency is not waited again", async () => {
  const clock = fakeClock();
  const pacer = new ReadPacer(100, clock);
  await pacer.wait();
  const started = clock.now();
  await clock.sleep(300); // the read takes 300 ms
  pacer.spent(50, started); // half a second's worth, from its start
  await pacer.wait();
  assert.deepEqual(clock.slept, [300, 200]);
  assert.equal(clock.now(), 500); // the next read starts 500 ms after the first started
});

Deno.test("throttling and server errors are retried with full jitter; others are thrown", async () => {
  const clock = fakeClock(0.5);
  let calls = 0;
  const result = await withBackoff(
    () => {
      calls++;
      if (calls === 1) throw named("ProvisionedThroughputExceededException");
      if (calls === 2) throw named("InternalServerError");
      return Promise.resolve("page");
    },
    () => {},
    clock,
  );
  assert.equal(result, "page");
  assert.deepEqual(clock.slept, [500, 1000]); // 0.5 × 1 s, 0.5 × 2 s
  await assert.rejects(
    withBackoff(() => Promise.reject(named("ValidationException")), () => {}, clock),
    /ValidationException happened/,
  );
});

Deno.test("a Scan that keeps failing gives up after a bounded number of rounds, naming the cause", async () => {
  const clock = fakeClock(1);
  const retries: string[] = [];
  let calls = 0;
  await assert.rejects(
    withBackoff(
      () => {
        calls++;
        return Promise.reject(named("ThrottlingException"));
      },
      (e, ms) => retries.push(`${e.name} ${ms}`),
      clock,
      3,
    ),
    (error: Error) => {
      assert.ok(error instanceof ScanGaveUp);
      assert.match(
        error.message,
        /failed 3 times .*ThrottlingException: ThrottlingException happened/,
      );
      return true;
    },
  );
  assert.equal(calls, 3);
  assert.deepEqual(retries, ["ThrottlingException 1000", "ThrottlingException 2000"]);
});
