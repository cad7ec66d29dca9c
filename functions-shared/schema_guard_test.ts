import assert from "node:assert/strict";
import {
  guardedHandler,
  missingRegistryColumns,
  RECHECK_AFTER_MS,
  REREAD_AFTER_FAILURE_MS,
  SCHEMA_MISMATCH_ANSWER,
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

Deno.test("the guard reads once a minute; a failure to read stands for seconds", async () => {
  let reads = 0;
  let answer: () => Map<string, Set<string>> = () => {
    throw new Error("the database is unavailable");
  };
  let clock = 0;
  const guard = schemaGuard(
    () => {
      reads++;
      return Promise.resolve().then(answer);
    },
    undefined,
    () => clock,
  );
  await assert.rejects(guard(), /the database is unavailable/);
  await assert.rejects(guard(), /the database is unavailable/);
  assert.equal(reads, 1, "not read again at once after the failure");
  clock += REREAD_AFTER_FAILURE_MS;
  answer = () => {
    const columns = matching();
    columns.get("firespring_segments")!.delete("member_count");
    return columns;
  };
  await assert.rejects(guard(), SchemaMismatch);
  await assert.rejects(guard(), SchemaMismatch);
  assert.equal(
    reads,
    2,
    "read again seconds after the failure, not within a minute of the mismatch",
  );
  // The migration pushed: seen at the first call a minute after the last read.
  answer = matching;
  clock += RECHECK_AFTER_MS - 1;
  await assert.rejects(guard(), SchemaMismatch);
  clock += 1;
  await guard();
  assert.equal(reads, 3);
  // And a column dropped under running functions is seen a minute later too.
  answer = () => {
    const columns = matching();
    columns.get("firespring_actions")!.delete("action_type");
    return columns;
  };
  await guard();
  clock += RECHECK_AFTER_MS;
  await assert.rejects(guard(), /public\.firespring_actions has no column action_type/);
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
    assert.equal(response.headers.get("x-sync-refusal"), "schema-mismatch");
    // The check comes before the function's own authentication: the body names no table.
    assert.deepEqual(await response.json(), { error: SCHEMA_MISMATCH_ANSWER });
  }
  assert.equal(handled, 0);
  assert.deepEqual(logged, [
    "the database's schema is not the one these functions map (public.firespring_segments has no column member_count): push the migrations of the functions' version (supabase db push --remote), then deploy the functions",
  ], "the log names the column, once");
  // A catalog that cannot be read now: logged, and the handler answers (its own errors
  // say why).
  const said: string[] = [];
  const unread = guardedHandler(
    schemaGuard(() => Promise.reject(new Error("connection refused"))),
    () => new Response("handled", { status: 200 }),
    (line) => said.push(line),
  );
  assert.equal((await unread(new Request("http://x/"))).status, 200);
  assert.deepEqual(said, ["the schema check could not read the catalog: connection refused"]);
});

Deno.test("a failure to read the catalog stands from when it failed, not from the read's start", async () => {
  let clock = 0;
  let reads = 0;
  const guard = schemaGuard(
    () => {
      reads++;
      // The read waited 10 s in the pooler's queue, then failed.
      return new Promise((_, reject) =>
        setTimeout(() => {
          clock += 10_000;
          reject(new Error("(ECHECKOUTTIMEOUT) unable to check out connection from the pool"));
        }, 0)
      );
    },
    TABLES,
    () => clock,
  );
  await assert.rejects(guard(), /ECHECKOUTTIMEOUT/);
  await assert.rejects(guard(), /ECHECKOUTTIMEOUT/);
  assert.equal(reads, 1, "the failure stands at once after it");
  clock += REREAD_AFTER_FAILURE_MS - 1;
  await assert.rejects(guard(), /ECHECKOUTTIMEOUT/);
  assert.equal(reads, 1, "and for its whole window");
  clock += 1;
  await assert.rejects(guard(), /ECHECKOUTTIMEOUT/);
  assert.equal(reads, 2);
});
