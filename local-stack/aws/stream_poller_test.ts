import assert from "node:assert/strict";
import { DEPLOYED_MAPPING } from "./mapping_settings.ts";
import { reservedConcurrency } from "./stream_poller.ts";

Deno.test("STREAM_RESERVED_CONCURRENCY: the deployed value unset, a positive integer, or -1 for none", () => {
  assert.equal(reservedConcurrency(undefined), DEPLOYED_MAPPING.reservedConcurrency);
  assert.equal(reservedConcurrency("2"), 2);
  assert.equal(reservedConcurrency("-1"), undefined);
  for (const bad of ["", "0", "-2", "1.5", "x"]) {
    assert.throws(
      () => reservedConcurrency(bad),
      new RegExp(
        `STREAM_RESERVED_CONCURRENCY must be a positive integer .* or -1 \\(no limit\\), not ${
          JSON.stringify(bad).replace(/[.]/g, "\\.")
        }`,
      ),
      bad,
    );
  }
});
