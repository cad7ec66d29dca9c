import assert from "node:assert/strict";
import {
  guardedHandler,
  missingRegistryColumns,
  schemaGuard,
  SchemaMismatch,
} from "./schema_guard.ts";
import { TABLES } from "./table_registry.ts";

/** The registry's own columns for every table: what a database of the same version has. */
const matching = () =>
  new Map(
    TABLES.map((
      t,
    ) => [t.targetTable, new Set([...Object.keys(t.columns), t.catchAll, "synced_at"])]),
  );

Deno.test("a database of the registry's version has every column it maps", () => {
  assert.deepEqual(missingRegistryColumns(TABLES, matching()), []);
});

Deno.test("a column the registry maps and the table lacks is named, as is a table missing", () => {
  const columns = matching();
  columns.get("firespring_segments")!.delete("member_count");
  columns.delete("firespring_actions");
  assert.deepEqual(missingRegistryColumns(TABLES, columns).sort(), [
    "public.firespring_actions does not exist",
    "public.firespring_segments has no column member_count",
  ]);
});

Deno.test("the guard reads once; a mismatch is kept, a failure to read is not", async () => {
  let reads = 0;
  let answer: () => Map<string, Set<string>> = () => {
    throw new Error("the database is unavailable");
  };
  const guard = schemaGuard(() => {
    reads++;
    return Promise.resolve().then(answer);
  });
  await assert.rejects(guard(), /the database is unavailable/);
  answer = () => {
    const columns = matching();
    columns.get("firespring_segments")!.delete("member_count");
    return columns;
  };
  await assert.rejects(guard(), SchemaMismatch);
  await assert.rejects(guard(), SchemaMismatch);
  assert.equal(reads, 2, "read again after the failure, not after the mismatch");
  const fine = schemaGuard(() => Promise.resolve(matching()));
  await fine();
  await fine();
});

Deno.test("a function behind the guard answers 503 naming the missing column, and does nothing", async () => {
  const logged: string[] = [];
  let handled = 0;
  const columns = matching();
  columns.get("firespring_segments")!.delete("member_count");
  const handler = guardedHandler(
    schemaGuard(() => Promise.resolve(columns)),
    () => {
      handled++;
      return new Response("ok");
    },
    (line) => logged.push(line),
  );
  for (let i = 0; i < 2; i++) {
    const response = await handler(new Request("http://x/", { method: "POST" }));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "60");
    assert.match(
      (await response.json()).error,
      /^the database's schema is not the one these functions map \(public\.firespring_segments has no column member_count\): push the migrations of the functions' version \(supabase db push\), then deploy the functions; nothing was done$/,
    );
  }
  assert.equal(handled, 0);
  assert.equal(logged.length, 1, "logged once per isolate");
  // A catalog that cannot be read now: the handler answers (its own errors say why).
  const unread = guardedHandler(
    schemaGuard(() => Promise.reject(new Error("connection refused"))),
    () => new Response("handled", { status: 200 }),
  );
  assert.equal((await unread(new Request("http://x/"))).status, 200);
});
