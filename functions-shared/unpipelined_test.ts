import assert from "node:assert/strict";
import type postgres from "postgres";
import { unpipelined } from "./unpipelined.ts";

Deno.test("the statement goes out alone: no parameters, and postgres.js told its connection takes no other", async () => {
  const calls: { text: string; params: unknown[]; options: Record<string, unknown> }[] = [];
  const sql = {
    unsafe: (text: string, params: unknown[], options: Record<string, unknown>) => {
      calls.push({ text, params, options });
      return Promise.resolve([{ one: 1 }]);
    },
  } as unknown as postgres.Sql;
  assert.deepEqual(await unpipelined(sql, "select 1 as one"), [{ one: 1 }]);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].text, "select 1 as one");
  assert.deepEqual(calls[0].params, []);
  // postgres.js 3.4.9 (connection.js, execute): the connection is "full" when this says no.
  const onexecute = calls[0].options.onexecute as (connection: unknown) => boolean;
  assert.equal(onexecute({}), false);
});
