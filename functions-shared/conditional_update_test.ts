import assert from "node:assert/strict";
import { ConditionalUpdate } from "./conditional_update.ts";

const key = { id: { S: "k1" } };

Deno.test("a written value is SET and pinned to the value read; the key must exist", () => {
  const update = new ConditionalUpdate({ id: { S: "k1" }, name: { S: "old" } });
  update.write("name", { S: "new" });
  assert.deepEqual(update.input("T", key), {
    TableName: "T",
    Key: key,
    UpdateExpression: "SET #a0 = :v0",
    ConditionExpression: "attribute_exists(#a1) AND #a0 = :v1",
    ExpressionAttributeNames: { "#a0": "name", "#a1": "id" },
    ExpressionAttributeValues: { ":v0": { S: "new" }, ":v1": { S: "old" } },
  });
});

Deno.test("an emptied attribute is REMOVEd; one the item lacks is pinned as absent", () => {
  const update = new ConditionalUpdate({ id: { S: "k1" }, a: { N: "1" } });
  update.write("a", undefined);
  update.write("b", { S: "x" });
  const input = update.input("T", key);
  assert.equal(input.UpdateExpression, "SET #a1 = :v1 REMOVE #a0");
  assert.equal(
    input.ConditionExpression,
    "attribute_exists(#a2) AND #a0 = :v0 AND attribute_not_exists(#a1)",
  );
});

Deno.test("a value the item holds already is not written, only pinned: the update changes nothing", () => {
  const update = new ConditionalUpdate({ id: { S: "k1" }, n: { N: "1" }, z: { NULL: true } });
  update.write("n", { N: "1" });
  update.write("gone", undefined);
  update.pin("z");
  update.pin("z");
  assert.equal(update.changesNothing(), true);
  const input = update.input("T", key);
  assert.equal(input.UpdateExpression, "");
  // A NULL is held by its type; a pin is made once.
  assert.equal(
    input.ConditionExpression,
    "attribute_exists(#a3) AND #a0 = :v0 AND attribute_not_exists(#a1) AND " +
      "attribute_type(#a2, :v1)",
  );
  assert.deepEqual(input.ExpressionAttributeValues, { ":v0": { N: "1" }, ":v1": { S: "NULL" } });
});

Deno.test("names() tells the attributes written or pinned, and no other", () => {
  const update = new ConditionalUpdate({ id: { S: "k1" } });
  update.pin("_version");
  assert.equal(update.names("_version"), true);
  assert.equal(update.names("updatedAt"), false);
  assert.equal(update.changesNothing(), true);
  update.write("updatedAt", { S: "2026-01-01T00:00:00.000Z" });
  assert.equal(update.names("updatedAt"), true);
  assert.equal(update.changesNothing(), false);
});
