import assert from "node:assert/strict";
import { type Handler, openFunction, servedOrRefused } from "./cold_start.ts";
import { PLATFORM_SETTINGS } from "./settings.ts";

/** The import-worker's handler when its cold start throws `thrown`, and what it logged. */
function refusing(thrown: Error): { handler: Handler; logged: string[] } {
  const logged: string[] = [];
  const error = console.error;
  console.error = (line: string) => logged.push(line);
  try {
    const handler = servedOrRefused("import-worker", () => {
      throw thrown;
    });
    return { handler, logged };
  } finally {
    console.error = error;
  }
}

Deno.test("a cold start that throws answers every request 503, misconfigured, naming the cause", async () => {
  const { handler, logged } = refusing(
    new Error('SYNC_DB_POOL_MAX is "0"; it must be a whole number from 1 to 20'),
  );
  assert.deepEqual(logged, [
    'import-worker refuses every request: SYNC_DB_POOL_MAX is "0"; it must be a whole number from 1 to 20',
  ]);
  for (let i = 0; i < 2; i++) {
    const response = await handler(new Request("http://x/", { method: "POST" }));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("x-sync-refusal"), "misconfigured");
    assert.equal(response.headers.get("retry-after"), "60");
    assert.deepEqual(await response.json(), {
      error: 'import-worker is misconfigured: SYNC_DB_POOL_MAX is "0"; it must be a whole ' +
        "number from 1 to 20; nothing was done",
    });
  }
  const served = servedOrRefused("x", () => () => new Response("ok"));
  assert.equal(await (await served(new Request("http://x/"))).text(), "ok");
});

Deno.test("a fault of the code at cold start is logged where it lies, and answered without it", async () => {
  const { handler, logged } = refusing(
    new TypeError("Cannot read properties of undefined (reading 'db')"),
  );
  assert.match(
    logged[0],
    /^import-worker refuses every request: TypeError: Cannot read .* \(at file:.*cold_start_test\.ts:\d+:\d+\)$/,
  );
  const response = await handler(new Request("http://x/"));
  assert.equal(response.status, 503);
  const body = await response.text();
  assert.match(body, /import-worker is misconfigured: a fault of its code at cold start/);
  assert.doesNotMatch(body, /Cannot read|cold_start_test|\(at /);
});

Deno.test("openFunction opens the settings, the service keys and the pool, naming the database without its password", async () => {
  const env = (name: string) =>
    ({
      SYNC_DB_URL: "postgresql://postgres:s3cret-pw@127.0.0.1:6543/postgres?pgbouncer=true",
      SUPABASE_URL: "http://127.0.0.1:54321",
      SUPABASE_SERVICE_ROLE_KEY: "service-key",
    })[name];
  const logged: string[] = [];
  const log = console.log;
  console.log = (line: string) => logged.push(line);
  try {
    const opened = openFunction("mmp-toledo-sync", PLATFORM_SETTINGS, env);
    assert.deepEqual(opened.serviceKeys, ["service-key"]);
    assert.equal(opened.settings.supabaseUrl, "http://127.0.0.1:54321");
    assert.equal(opened.env, env);
    await opened.sql.end();
  } finally {
    console.log = log;
  }
  assert.equal(logged.length, 1);
  assert.match(logged[0], /^mmp-toledo-sync: database /);
  assert.ok(!logged[0].includes("s3cret-pw"), logged[0]);
  // The platform's direct connection works, with a warning that names the way out.
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warned.push(line);
  console.log = () => {};
  try {
    for (
      const url of [
        "postgresql://postgres:s3cret-pw@db.abcdefghijklmnopqrst.supabase.co:5432/postgres",
        "postgresql://postgres.abcdefghijklmnopqrst:s3cret-pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres",
      ]
    ) {
      const opened = openFunction(
        "mmp-toledo-sync",
        PLATFORM_SETTINGS,
        (name) => name === "SYNC_DB_URL" ? undefined : name === "SUPABASE_DB_URL" ? url : env(name),
      );
      await opened.sql.end();
    }
  } finally {
    console.warn = warn;
    console.log = log;
  }
  assert.equal(warned.length, 1, "the pooler: no warning");
  assert.match(
    warned[0],
    /^mmp-toledo-sync: the database is reached by a direct connection, .*set SYNC_DB_URL to the transaction pooler \(port 6543\)$/,
  );
  assert.ok(!warned[0].includes("s3cret-pw"));
  // A setting it cannot take is thrown, named, for servedOrRefused to answer.
  assert.throws(
    () =>
      openFunction(
        "mmp-toledo-sync",
        PLATFORM_SETTINGS,
        (name) => name === "SYNC_DB_URL" ? "nope" : env(name),
      ),
    /SYNC_DB_URL/,
  );
});
