/**
 * A backfill's end, chunk by chunk (docs/sync-semantics.md, "A backfill ends equal";
 * supabase/migrations/20261128003600_sweep_in_chunks.sql): once every segment is read,
 * the rows the Scan did not see are removed a few blocks of the table's heap per
 * statement (`sync.sweep_unseen_chunk`). The last page's statement runs what a few
 * seconds allow; the rest is run here, by the import-worker between its Scans, and by the
 * export command once its files are loaded.
 *
 * @module
 */

import type postgres from "postgres";

/**
 * Runs the chunks of job `job`'s end until it is over ("over": the job is done, or has no
 * sweep to run) or `spent()` says to stop before the next chunk ("budget"). Every call
 * runs at least one chunk, so a run always moves the sweep on. `onChunk` hears of each
 * chunk that did not end it (a line now and then for a long sweep).
 */
export async function sweepJob(
  sql: postgres.Sql,
  job: string,
  spent: () => boolean,
  onChunk: (chunks: number) => void = () => {},
): Promise<"over" | "budget"> {
  for (let chunks = 1;; chunks++) {
    const [{ over }] = await sql<{ over: boolean }[]>`
      select sync.sweep_unseen_chunk(${job}::bigint) as over`;
    if (over) return "over";
    onChunk(chunks);
    if (spent()) return "budget";
  }
}

/**
 * Runs the ends of Scan backfills left to the workers (`sync.sweep_due`), the oldest
 * first, until none is left ("none") or `spent()` ("budget": the caller hands on).
 */
export async function sweepDue(
  sql: postgres.Sql,
  worker: string,
  spent: () => boolean,
  log: (line: string) => void,
): Promise<"none" | "budget"> {
  while (true) {
    if (spent()) return "budget";
    // A parameter, as every statement of the worker (backfill_worker.ts, on pipelining
    // through the transaction pooler).
    const [{ job }] = await sql<{ job: string | null }[]>`
      select sync.sweep_due()::text as job, ${worker}::text as worker`;
    if (job === null) return "none";
    const ended = await sweepJob(sql, job, spent);
    if (ended === "budget") return "budget";
    log(`backfill job ${job}: its end removed what its Scan did not see; the job is done`);
  }
}
