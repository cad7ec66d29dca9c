import assert from "node:assert/strict";
import { denoTestCounts, e2eCounts, pgProveCounts, terraformTestCounts } from "./test_counts.ts";

Deno.test("an end-to-end file without its summary line counts as a failure, whatever its exit code", () => {
  assert.deepEqual(e2eCounts("running 3 tests from tests/x_test.ts\nfirst ... ok (2ms)\n"), {
    passed: 0,
    failed: 1,
  });
  assert.deepEqual(e2eCounts("ok | 3 passed (2 steps) | 0 failed (1s)\n"), {
    passed: 3,
    failed: 0,
  });
});

Deno.test("deno test's summary line gives its counts, steps or not", () => {
  assert.deepEqual(denoTestCounts("...\nok | 12 passed (3 steps) | 0 failed (2s)\n"), {
    passed: 12,
    failed: 0,
  });
  assert.deepEqual(denoTestCounts("FAILED | 9 passed | 2 failed (1s)"), { passed: 9, failed: 2 });
  assert.equal(denoTestCounts("error: Module not found"), undefined);
});

Deno.test("pg_prove's failed subtests are taken from its total, and a file that failed with none counts once", () => {
  assert.deepEqual(
    pgProveCounts(
      "t/01.sql .. Failed 2/30 subtests\nFiles=3, Tests=57,  1 wallclock secs\nResult: FAIL",
    ),
    { passed: 55, failed: 2 },
  );
  assert.deepEqual(pgProveCounts("Files=1, Tests=4, 0 wallclock secs\nResult: FAIL"), {
    passed: 4,
    failed: 1,
  });
  assert.deepEqual(pgProveCounts("Files=1, Tests=4\nResult: PASS"), { passed: 4, failed: 0 });
  assert.equal(pgProveCounts("could not connect"), undefined);
});

Deno.test("terraform test's last line gives its counts", () => {
  assert.deepEqual(terraformTestCounts("Failure! 3 passed, 1 failed, 1 skipped."), {
    passed: 3,
    failed: 1,
  });
  assert.equal(terraformTestCounts("Error: Invalid block"), undefined);
});
