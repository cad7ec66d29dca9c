import assert from "node:assert/strict";
import { handleWebhook } from "./webhook.ts";
import { deps, fakeDb, segment, signed } from "./webhook_fakes.ts";

Deno.test("a committed batch notes each stream record's stream and sequence number", async () => {
  const db = fakeDb();
  const records = [segment("s-1", "100"), segment("s-2", "101"), segment("s-1", "102")];
  const response = await handleWebhook(signed(JSON.stringify({ records })), deps(db));
  assert.equal(response.status, 200);
  assert.deepEqual(
    db.noted.map((r) => r.seq),
    ["100", "101", "102"],
  );
  assert.equal(db.noted[0].arn, records[0].eventSourceARN);
  // Noted by the batch's one statement (sync.try_apply_webhook_batch), with its merge.
  assert.equal(db.statements.length, 1, "one statement for the whole batch");
});

Deno.test("a record that is dead-lettered is noted too: the webhook has dealt with it", async () => {
  const db = fakeDb();
  const bad = segment("s-1", "200");
  bad.dynamodb.NewImage = { segment_id: { S: "s-1" }, value: { N: "abc" } } as never;
  const response = await handleWebhook(signed(JSON.stringify({ records: [bad] })), deps(db));
  assert.equal(response.status, 200);
  assert.deepEqual(db.noted.map((r) => r.seq), ["200"]);
});

Deno.test("a batch that is not applied (503) notes nothing; a direct request notes nothing", async () => {
  const down = fakeDb({ unavailableTimes: 1 });
  const response = await handleWebhook(
    signed(JSON.stringify({ records: [segment("s-1", "300")] })),
    deps(down),
  );
  assert.equal(response.status, 503);
  assert.deepEqual(down.noted, []);

  const db = fakeDb();
  const direct = JSON.stringify({
    table: "firespring_segments",
    action: "UPSERT",
    data: { segment_id: "s-9", name: "x" },
  });
  assert.equal((await handleWebhook(signed(direct), deps(db))).status, 200);
  assert.deepEqual(db.noted, []);
  assert.equal(db.statements.some((s) => s.includes("note_stream_records")), false);
});
