import assert from "node:assert/strict";
import { ScanGaveUp, withBackoff } from "./scan_pacing.ts";
import { fakeClock } from "./testing_fakes.ts";

const named = (name: string) => Object.assign(new Error(`${name} happened`), { name });

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
      (e, ms) => void retries.push(`${e.name} ${ms}`),
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
