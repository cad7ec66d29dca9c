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
import { LEASE_LOST } from "./segment_work.ts";
import { isDatabaseUnavailable, lostToAnother } from "./db_errors.ts";

/**
 * Runs the chunks of job `job`'s end until it is over ("over": the job is done, or has no
 * sweep to run) or `spent()` says to stop before the next chunk ("budget"). Every call
 * runs at least one chunk, so a run always moves the sweep on. `worker`: the holder of
 * the sweep (`sync.claim_sweep`), whose lease each chunk renews; none for the export
 * command. `onChunk` hears of each chunk that did not end it.
 */
export async function sweepJob(
  sql: postgres.Sql,
  job: string,
  spent: () => boolean,
  options: { worker?: string; onChunk?: (chunks: number) => void } = {},
): Promise<"over" | "budget"> {
  for (let chunks = 1;; chunks++) {
    const [{ over }] = await sql<{ over: boolean }[]>`
      select sync.sweep_unseen_chunk(${job}::bigint, 2048, ${options.worker ?? null}::text)
             as over`;
    if (over) return "over";
    options.onChunk?.(chunks);
    if (spent()) return "budget";
  }
}

/**
 * Runs the ends of Scan backfills left to the workers, one at a time under a lease
 * (`sync.claim_sweep`: a worker that finds every one held ends with nothing to do; with
 * `idleSeconds`, only one whose last chunk ran longer ago than that),
 * until none waits ("none") or `spent()` ("budget": the sweep is given back, and the
 * caller hands on). A chunk that fails is counted (`sync.note_sweep_failure`: the fifth
 * in a row fails the job, naming the cause) and the error thrown, unless the database
 * was unavailable or the chunk lost to another statement (a deadlock, a lock timeout:
 * given back, not counted); a lost lease (SY001) ends the run with nothing to do.
 */
export async function sweepDue(
  sql: postgres.Sql,
  worker: string,
  spent: () => boolean,
  log: (line: string) => void,
  idleSeconds = 0,
): Promise<"none" | "budget"> {
  while (true) {
    if (spent()) return "budget";
    // The job and its table in the claim's statement: every line names both, even one
    // about the database unavailable, which no later read could ask.
    const [{ job, table }] = await sql<{ job: string | null; table: string | null }[]>`
      select c.job::text as job, j.source_table as table
      from (select sync.claim_sweep(${worker}, make_interval(secs => ${idleSeconds})) as job) c
      left join sync.backfill_jobs j on j.id = c.job`;
    if (job === null) return "none";
    const where = `backfill job ${job} of ${table}`;
    let ended: "over" | "budget";
    try {
      ended = await sweepJob(sql, job, spent, { worker });
    } catch (error) {
      if ((error as { code?: string }).code === LEASE_LOST) return "none";
      const cause = (error as Error).message;
      if (isDatabaseUnavailable(error)) {
        log(`${where}: a chunk of its end found the database unavailable: ${cause}`);
        throw error;
      }
      // A chunk that lost to another statement (a deadlock, a lock timeout) may pass as it
      // is: given back for the next worker, counted nowhere (as a segment's page).
      if (lostToAnother(error)) {
        await sql`select sync.release_sweep(${job}::bigint, ${worker})`.catch(() => {});
        log(
          `${where}: a chunk of its end lost to another statement: ${cause}; ` +
            "given back for the next worker",
        );
        throw error;
      }
      const [{ failed }] = await sql<{ failed: boolean }[]>`
        select sync.note_sweep_failure(${job}::bigint, ${worker}, ${cause}) as failed`;
      log(
        `${where}: a chunk of its end failed: ${cause}` +
          (failed ? "; the job failed: five in a row" : "; it is tried again"),
      );
      throw error;
    }
    if (ended === "budget") {
      await sql`select sync.release_sweep(${job}::bigint, ${worker})`;
      return "budget";
    }
    // Over: the sweep's last chunk ended the job, or the job ended before it (cancelled or
    // failed meanwhile), its sweep left unfinished. One read, once per job's end.
    const [row] = await sql<{ status: string }[]>`
      select status from sync.backfill_jobs where id = ${job}::bigint`;
    log(
      row?.status === "done"
        ? `${where}: its end is over: the rows its Scan did not see are removed`
        : `${where}: its end stopped: the job is ${
          row?.status ?? "gone"
        }; the rows its Scan did not see are left`,
    );
  }
}
