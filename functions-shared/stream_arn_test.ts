import assert from "node:assert/strict";
import { readStreamArn } from "./stream_arn.ts";
import { bySourceTable } from "./table_registry.ts";

const ACTIONS =
  "arn:aws:dynamodb:us-east-1:123456789012:table/firespring-backdoor-actions-dev/stream/2026-01-01T00:00:00.000";

Deno.test("readStreamArn names the table, its registry entry and a region that is not its", () => {
  const ours = readStreamArn(ACTIONS);
  assert.equal(ours.sourceTable, "firespring-backdoor-actions-dev");
  assert.equal(ours.spec, bySourceTable("firespring-backdoor-actions-dev"));
  assert.equal(ours.elsewhere, null);
  assert.equal(readStreamArn(ACTIONS), ours, "kept for the stream's next records");
  const replica = readStreamArn(ACTIONS.replace("us-east-1", "eu-west-1"));
  assert.match(
    replica.elsewhere ?? "",
    /^firespring-backdoor-actions-dev in eu-west-1 is not the registered table, which is in us-east-1/,
  );
  const unknown = readStreamArn("arn:aws:dynamodb:us-east-1:1:table/nobody/stream/x");
  assert.deepEqual(unknown, { sourceTable: "nobody", spec: undefined, elsewhere: null });
  assert.deepEqual(readStreamArn("not an arn"), {
    sourceTable: null,
    spec: undefined,
    elsewhere: null,
  });
});

Deno.test("readStreamArn keeps at most 64 readings, and reads again past them", () => {
  const first = readStreamArn(ACTIONS);
  for (let i = 0; i < 70; i++) readStreamArn(`arn:aws:dynamodb:us-east-1:1:table/t${i}/stream/x`);
  const again = readStreamArn(ACTIONS);
  assert.notEqual(again, first, "read again once the kept readings started over");
  assert.deepEqual(again, first);
});
