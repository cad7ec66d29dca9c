import assert from "node:assert/strict";
import { isSharedPooler, parseDbUrl } from "../functions-shared/db_url.ts";
import { backfillArgs } from "./backfill_args.ts";
import {
  exportClientToken,
  exportFileSlots,
  exportLoaderName,
  exportPoolSize,
  POOLER_CONNECTIONS,
} from "./backfill_from_exports.ts";

Deno.test("an export's ClientToken is the same for a rerun within the hour, so it joins the export asked for", () => {
  const [actions, searches] = backfillArgs(["firespring_actions", "firespring_searches"]).tables;
  const target = { bucket: "exports", prefix: "" };
  const at = (iso: string) => new Date(iso);
  const token = exportClientToken(actions, target, at("2026-11-29T22:05:00Z"));
  assert.match(token, /^backfill-[0-9a-f]{48}$/);
  assert.ok(token.length <= 64, "within DynamoDB's 64 characters");
  assert.equal(exportClientToken(actions, target, at("2026-11-29T22:59:59Z")), token);
  assert.notEqual(exportClientToken(actions, target, at("2026-11-29T23:00:00Z")), token);
  assert.notEqual(exportClientToken(searches, target, at("2026-11-29T22:05:00Z")), token);
  assert.notEqual(
    exportClientToken(actions, { bucket: "exports", prefix: "p/" }, at("2026-11-29T22:05:00Z")),
    token,
  );
});

Deno.test("two loaders never share a lease owner, not even with the same pid on two hosts", () => {
  const a = exportLoaderName("host-a", 7, "0f3c9a1e-aaaa");
  const b = exportLoaderName("host-b", 7, "0f3c9a1e-aaaa");
  const again = exportLoaderName("host-a", 7, "5d2e7b40-bbbb");
  assert.equal(a, "export-loader-host-a-7-0f3c9a1e");
  assert.notEqual(a, b, "two containers, each with pid 7");
  assert.notEqual(a, again, "the same host and pid, a later run");
});

Deno.test("the export loaders share a connection a worker, at most 16, and 3 through a shared pooler", () => {
  assert.equal(exportPoolSize(4, 1), 4);
  assert.equal(exportPoolSize(2, 7), 14);
  assert.equal(exportPoolSize(4, 9), 16, "--all at 4 workers asked for 36");
  assert.equal(exportPoolSize(4, 9, true), POOLER_CONNECTIONS - 1, "the bars take the fourth");
  assert.equal(exportFileSlots(16), 15, "one connection kept for claims and renewals");
  assert.equal(exportFileSlots(1), 1);
  // One worker on one table: a connection beside its file's, for its lease's renewals.
  assert.equal(exportPoolSize(1, 1), 2);
  assert.ok(exportFileSlots(exportPoolSize(1, 1)) < exportPoolSize(1, 1));
  for (
    const url of [
      "postgresql://postgres.ref:pw@aws-0-us-east-1.pooler.supabase.com:5432/postgres",
      "postgresql://postgres.ref:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres",
      "postgresql://postgres:pw@db.ref.supabase.co:6543/postgres",
      "postgresql://postgres:postgres@127.0.0.1:6543/postgres?pgbouncer=true",
    ]
  ) assert.ok(isSharedPooler(parseDbUrl(url)), url);
  assert.ok(
    !isSharedPooler(parseDbUrl("postgresql://postgres:pw@db.ref.supabase.co:5432/postgres")),
  );
});
