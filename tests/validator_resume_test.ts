/**
 * A validator request killed mid-segment (as the Edge Runtime kills an isolate over its
 * CPU limit) is resumed from the segment's checkpoint once its lease lapses, by the
 * heartbeat (`sync.wake_validations`, which pg_cron runs): no page staged twice or lost,
 * and the run ends with its staging removed (docs/sync-semantics.md, "Verification").
 */

import assert from "node:assert/strict";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { validationUnderWay } from "../functions-shared/db_errors.ts";
import { ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { connectDb, eventually, staleReadMs } from "./stack_clients.ts";
import { itemsFor, scanCount, writeThroughTheStream } from "./backfill_fixtures.ts";

Deno.test("a validator request killed mid-segment is resumed from its checkpoint: nothing staged twice or lost", async () => {
  const sql = connectDb();
  const p = `vkill-${crypto.randomUUID().slice(0, 8)}-`;
  const spec = byTargetTable("firespring_actions")!;
  // At least these 500 items of its own.
  const n = 500;
  try {
    await writeThroughTheStream(sql, spec.targetTable, p, itemsFor(spec.targetTable, p, n));
    const total = await scanCount(spec.targetTable);
    // About 300 pages (of 2 items or more), some seconds of Scan, so that the kill (a few
    // pages in) lands well before the segment's end, which the test asserts. With pages of
    // 25 over 500 items the whole segment took about 0.3 s, which a poll every 250 ms can
    // miss: a CI run timed out waiting for the third page of a segment that was, most
    // likely, already done. A segment done before the kill now fails at once.
    const pageSize = Math.max(2, Math.ceil(total / 300));
    // The validator's Scan is eventually consistent (docs/sync-semantics.md,
    // "Verification"): it counts what was written before its stale window.
    await new Promise((resolve) => setTimeout(resolve, staleReadMs()));

    // One segment, those pages, a 5 s lease; the validator called as pg_cron would. A
    // table has one run at a time: one under way (pg_cron's daily run at 03:17 UTC, or
    // another test's) refuses the start with SY006, and is waited for.
    const runId = await eventually(
      "the table's run under way to end, and this one to start",
      async () => {
        try {
          const [started] =
            await sql`select sync.start_validation(${spec.targetTable}, false, 1, ${pageSize}) as id`;
          return Number(started.id);
        } catch (error) {
          if (validationUnderWay(error)) return undefined;
          throw error;
        }
      },
      600_000,
    );
    await sql`update sync.backfill_jobs set lease_seconds = 5 where checksum_run_id = ${runId}`;
    await sql`select sync.wake_validations()`;
    const segment = () =>
      sql`select s.pages, s.status, s.items_scanned, s.lease_expires_at < now() as lapsed
          from sync.backfill_segments s join sync.backfill_jobs j on j.id = s.job_id
          where j.checksum_run_id = ${runId}`;
    const inFlight = await eventually("the validator to be a few pages in", async () => {
      const [s] = await segment();
      // Done (or failed) before the kill: said at once. A segment handed on between
      // requests is pending for a moment: polled again.
      if (s.status !== "running" && s.status !== "pending") return s;
      return s.pages >= 3 && s.status === "running" ? s : undefined;
    });
    assert.equal(
      inFlight.status,
      "running",
      `the segment was ${inFlight.status} after ${inFlight.pages} pages, before the kill`,
    );
    // This checkout's validator isolates only: another checkout may run a stack of its
    // own, and a command that merely names the file (npm test's type check or module
    // resolution of the function) is no isolate. An isolate's command line ends with the
    // gateway's preload, then the function's entry point (local-stack/supabase/isolate_process.ts).
    await run("pkill", [
      "-9",
      "-f",
      `edge_runtime_shim\\.ts ${ROOT}/supabase/functions/data-checksum-validator/index\\.ts`,
    ]);
    const [before] = await segment();
    assert.ok(Number(before.items_scanned) < total, "the request died before the segment's end");

    // Once the lease lapses, the heartbeat's next call goes on from the checkpoint.
    await eventually("the lease to lapse", async () => {
      const [s] = await segment();
      return s.lapsed || s.status !== "running" ? true : undefined;
    }, 15_000);
    await sql`select sync.wake_validations()`;
    const result = await eventually("the run to end", async () => {
      const [r] = await sql`select status, missing || unexpected || different as divergent,
                                   source_items::int as items, streamed,
                                   expected_rows::int + jsonb_array_length(unmappable) as compared
                            from public.sync_checksums c where id = ${runId}`;
      return r.status === "running" ? undefined : r;
    }, 120_000);
    assert.equal(result.status, "done");
    assert.equal(result.items, total, "every item counted once: no page lost or repeated");
    assert.equal(result.streamed, true, "a plain table's pages are compared as they come");
    assert.equal(result.compared, total, "every item compared once (or named unmappable)");
    // Other tests' rows may diverge on the shared table (a webhook-only poison row, say);
    // this test's own keys must not.
    assert.deepEqual(
      (result.divergent as { action_id: string }[]).filter((k) => k.action_id.startsWith(p)),
      [],
      "the resumed run's comparison finds none of this test's keys divergent",
    );
    await sql`select sync.purge_expired_batch('validation_staging', 1000000)`;
    const [left] =
      await sql`select (select count(*)::int from sync.checksum_items where run_id = ${runId})
                                  + (select count(*)::int from sync.checksum_seen where run_id = ${runId})
                                  + (select count(*)::int from sync.checksum_divergent where run_id = ${runId})
                                    as staged`;
    assert.equal(left.staged, 0, "the ended run's staging rows go at retention's run");
    const [after] = await segment();
    assert.equal(Number(after.items_scanned), total);
    // (Each item counted once above is the resume from the checkpoint: a Scan begun again
    // would count the segment's first pages twice. Its log line, "taken over", comes only
    // when the kill found the segment under the killed request's lease.)
  } finally {
    await sql.end();
  }
});
