import assert from "node:assert/strict";
import { dataSetArgs, dataSetKeys, demoItems, REPORT_VOLUMES } from "./demo_data.ts";
import { bySourceTable } from "../functions-shared/table_registry.ts";

function distinctKeys(table: string, items: Record<string, { S?: string; N?: string }>[]) {
  const hash = bySourceTable(table)!.sourceKey[0].name;
  const keyAttrs = bySourceTable(table)!.collapse
    ? [hash]
    : bySourceTable(table)!.sourceKey.map((k) => k.name);
  return new Set(items.map((item) => keyAttrs.map((a) => item[a].S ?? item[a].N).join("|"))).size;
}

Deno.test("at scale 1 the data set has the report's volumes: 48,124 items, 35,817 keys", () => {
  const data = demoItems(42, 1);
  let items = 0;
  let keys = 0;
  for (const [table, volume] of Object.entries(REPORT_VOLUMES)) {
    assert.equal(data[table].length, volume.items, `${table} items`);
    const distinct = distinctKeys(table, data[table] as never);
    assert.equal(distinct, volume.keys, `${table} distinct keys`);
    items += data[table].length;
    keys += distinct;
  }
  assert.equal(items, 48_124);
  assert.equal(keys, 35_817);
});

Deno.test("dataSetKeys gives each table's distinct keys, as demoItems makes them, at any scale", () => {
  // Below 1 every table shrinks; above it the leads and the dashboard's items do not grow.
  for (const scale of [0.05, 1, 2]) {
    const data = demoItems(20260206, scale);
    const keys = dataSetKeys(scale);
    for (const table of Object.keys(REPORT_VOLUMES)) {
      assert.equal(keys[table], distinctKeys(table, data[table] as never), `${table} at ${scale}`);
    }
  }
});

Deno.test("the same seed gives the same items; another seed other items", () => {
  const a = JSON.stringify(demoItems(7, 0.05));
  assert.equal(JSON.stringify(demoItems(7, 0.05)), a);
  assert.notEqual(JSON.stringify(demoItems(8, 0.05)), a);
});

Deno.test("a small scale keeps every table that has items, and unique keys", () => {
  const data = demoItems(1, 0.01);
  for (const [table, volume] of Object.entries(REPORT_VOLUMES)) {
    if (volume.items > 0) assert.ok(data[table].length > 0, table);
  }
  const actions = data["firespring-backdoor-actions-dev"];
  assert.equal(new Set(actions.map((a) => a.action_id.S)).size, actions.length);
});

Deno.test("--scale and --seed are checked before anything is reset, naming the flag and the value", () => {
  assert.deepEqual(dataSetArgs("1", "20260206"), { scale: 1, seed: 20260206 });
  assert.deepEqual(dataSetArgs("0.5", "0"), { scale: 0.5, seed: 0 });
  for (const bad of ["abc", "0", "-1", "", "Infinity"]) {
    assert.throws(
      () => dataSetArgs(bad, "1"),
      new RegExp(
        `--scale must be a positive number \\(1 is the report's volumes\\), not ${
          JSON.stringify(JSON.stringify(bad)).slice(1, -1)
        }`,
      ),
    );
  }
  for (const bad of ["abc", "1.5", "-3", ""]) {
    assert.throws(() => dataSetArgs("1", bad), /--seed must be a whole number from 0/);
  }
});
