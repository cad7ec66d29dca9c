import assert from "node:assert/strict";
import { checkpointRefused, JOB_OVER, LEASE_LOST } from "./segment_work.ts";

Deno.test("a lost lease is a checkpoint's refusal wherever it was raised", () => {
  assert.equal(checkpointRefused({ code: LEASE_LOST }), true);
  assert.equal(checkpointRefused({ code: LEASE_LOST, where: "PL/pgSQL function x" }), true);
});

Deno.test("a job over is a refusal only when sync.checkpoint_segment raised it: the merge's own SY002 is an error", () => {
  const where = "PL/pgSQL function sync.checkpoint_segment(bigint,integer,text) line 12";
  assert.equal(checkpointRefused({ code: JOB_OVER, where }), true);
  assert.equal(
    checkpointRefused({ code: JOB_OVER, where: "PL/pgSQL function sync.merge_changes" }),
    false,
  );
  assert.equal(checkpointRefused({ code: JOB_OVER }), false);
});

Deno.test("anything else, or nothing, is not a refusal", () => {
  assert.equal(checkpointRefused(new Error("connection reset")), false);
  assert.equal(checkpointRefused({ code: "23505" }), false);
  assert.equal(checkpointRefused(undefined), false);
  assert.equal(checkpointRefused(null), false);
});
