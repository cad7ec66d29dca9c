import assert from "node:assert/strict";
import { StreamMappings } from "./stream_mappings.ts";

Deno.test("a table's mapping reads the stream it was made for, and never follows a new one", () => {
  const mappings = new StreamMappings();
  assert.deepEqual(mappings.streamOf("t", undefined, false), { arn: undefined }, "no stream");
  assert.deepEqual(mappings.streamOf("t", "s0", false), { arn: undefined }, "a stream off");
  assert.deepEqual(mappings.streamOf("t", "s1", true), { arn: "s1" }, "made once one is on");
  const replaced = mappings.streamOf("t", "s2", true);
  assert.equal(replaced.arn, "s1");
  assert.match(
    replaced.news!,
    /^t: its stream is now s2, but its mapping reads s1, as a Lambda mapping does/,
  );
  assert.deepEqual(mappings.streamOf("t", "s2", true), { arn: "s1" }, "said once");
  assert.deepEqual(mappings.streamOf("t", "s1", false), { arn: "s1" }, "the stream turned off");
  assert.deepEqual(mappings.streamOf("u", "s3", true), { arn: "s3" }, "each table its own");
});

Deno.test("a table's stream is looked up every turn until mapped, then every lookUpMs", () => {
  const mappings = new StreamMappings(10_000);
  assert.equal(mappings.lookUpDue("t", 0), true, "never looked up");
  mappings.lookedUp("t", 0);
  assert.equal(mappings.lookUpDue("t", 1_000), true, "no mapping yet: every turn");
  mappings.streamOf("t", "s1", true);
  mappings.lookedUp("t", 1_000);
  assert.equal(mappings.mapped("t"), "s1");
  assert.equal(mappings.lookUpDue("t", 10_999), false, "mapped: not before lookUpMs");
  assert.equal(mappings.lookUpDue("t", 11_000), true);
  assert.equal(mappings.lookUpDue("u", 11_000), true, "each table its own");
});
