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

Deno.test("no pool-level statement without parameters but through unpipelined()", () => {
  // A tagged template with no ${...}, or sql.unsafe(text) without parameters, on the pool
  // (`sql`, not a transaction's `tx`) could have another statement pipelined behind it.
  const dir = new URL(".", import.meta.url).pathname;
  const offenders: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".ts") || /_test\.ts$|fakes\.ts$/.test(entry.name)) continue;
    const text = Deno.readTextFileSync(`${dir}${entry.name}`);
    const bare = [
      // With or without a type argument: sql`...` and sql<T>`...`.
      ...text.matchAll(/\bsql(?:<[^`]*?>)?`([^`]*)`/g),
      ...text.matchAll(/\bsql\.unsafe\(\s*(`[^`]*`|"[^"]*"|'[^']*')\s*\)/g),
    ].filter((m) => !m[1].includes("${") || m[0].startsWith("sql.unsafe"));
    for (const m of bare) offenders.push(`${entry.name}: ${m[0].slice(0, 60)}`);
  }
  assert.deepEqual(offenders, []);
});
