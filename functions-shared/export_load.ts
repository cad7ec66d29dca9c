/**
 * Loading an export backfill's data files (docs/sync-semantics.md, "Backfills from an
 * export"): workers claim the job's files (`sync.claim_export_file`) and load each
 * (functions-shared/export_file_load.ts). A file whose worker died is taken up from its
 * checkpoint; a file that is not what its manifest says fails its segment, and with it
 * the job, with the file's key, line and cause.
 *
 * @module
 */

import { sweepJob } from "./backfill_sweep.ts";
import { credentialsRefused, TRANSIENT_ATTEMPTS, transientLoadFailure } from "./export_failures.ts";
import { type ExportFileClaim, type ExportLoadDeps, loadExportFile } from "./export_file_load.ts";
import { whenAdmitted } from "./run_gate.ts";
import { realPacing } from "./scan_pacing.ts";
import { checkpointRefused } from "./segment_work.ts";
import { lostToAnother } from "./db_errors.ts";
import { describeError } from "./error_text.ts";

/**
 * Loads every file of export backfill `job` with `workers` workers at once, until the job
 * is over. A file held by a loader that died, or whose chunk outlasted its lease, is taken
 * up once its lease expires, so a worker with nothing to claim waits while the job still
 * has files in flight. A worker whose file is no longer its own leaves it (logged) and
 * claims another: its checkpoint refused (the lease taken over, the job over, the file's
 * checkpoint elsewhere than the chunk began: `checkpointRefused`), or its own error met
 * after the lease was taken over, which `sync.fail_segment` then ignores (the new holder
 * meets a real one itself). A failure that may pass ({@link transientLoadFailure}) gives
 * the file back and waits, up to {@link TRANSIENT_ATTEMPTS} in a row, and then stops every
 * worker, the job left running: the next run of the command goes on from its
 * checkpoints. Any other failure of a file whose lease its worker holds fails its segment
 * and the job. Either way the error is thrown once every worker has stopped; so is a job
 * that ended other than done (cancelled, say): among them a file taken over more than
 * three times in a row, no chunk written, which `sync.claim_export_file` fails rather
 * than hand out again.
 */
export async function loadExportJob(
  job: string,
  workers: number,
  name: string,
  deps: ExportLoadDeps,
): Promise<void> {
  let failure: unknown;
  const sleep = deps.sleep ?? realPacing.sleep;
  // Fails the file's segment, and with it the job, if `worker` still held its lease (read
  // under the segment's row lock, so that no claim comes between); answers whether it did.
  const failSegment = (worker: string, segment: number, message: string) =>
    deps.sql.begin(async (tx) => {
      const [row] = await tx<{ mine: boolean }[]>`
        select lease_owner is not distinct from ${worker} and status = 'running' as mine
        from sync.backfill_segments where job_id = ${job} and segment = ${segment} for update`;
      await tx`select sync.fail_segment(${job}, ${segment}, ${worker}, ${message})`;
      return row?.mine === true;
    });
  // Gives a file back if `worker` still holds it (sync.release_segment does nothing
  // otherwise), for any worker to take at once; when the database lets it, else its lease
  // runs out.
  const giveBack = (worker: string, segment: number) =>
    deps.sql`select sync.release_segment(${job}, ${segment}, ${worker})`.then(
      () => {},
      () => {},
    );
  const work = async (n: number) => {
    // Renamed after it leaves a stuck chunk (export_file_load.ts): that chunk's
    // connection, were it to come back, must find the file's lease another's.
    let worker = `${name}-${n}`;
    let stuckChunks = 0;
    let inARow = 0;
    // After a failure that may pass: the wait before the next try, or (the attempts
    // spent) none, every worker stopped.
    const later = (where: string, message: string): number => {
      inARow++;
      if (inARow >= TRANSIENT_ATTEMPTS) {
        failure ??= new Error(
          `${where}: ${message}; stopped after ${inARow} failed attempts in a row, the job ` +
            "left running: run the command again to go on from its checkpoints",
        );
        return 0;
      }
      const waitMs = Math.min(30_000, 1000 * 2 ** (inARow - 1));
      deps.log?.(`${where}: ${message}; trying again in ${waitMs} ms`);
      return waitMs;
    };
    // One file claimed and loaded, within a place of deps.fileSlots when given (so that
    // its lease runs only while it has a connection to load with); answers "over" when
    // the job has no file left, else how long to wait (out of the place) before the next.
    const oneFile = async (): Promise<"over" | number> => {
      let file: ExportFileClaim | undefined;
      try {
        [file] = await deps.sql<ExportFileClaim[]>`
          select * from sync.claim_export_file(${job}, ${worker})`;
        if (!file) {
          const [left] = await deps.sql`
            select count(*)::int as n from sync.backfill_segments s
            join sync.backfill_jobs j on j.id = s.job_id
            where s.job_id = ${job} and s.status <> 'done' and j.status in ('pending', 'running')`;
          return left.n === 0 ? "over" : 1000;
        }
      } catch (error) {
        if (!transientLoadFailure(error)) throw error;
        return later(`export backfill job ${job}`, (error as Error).message);
      }
      try {
        // Failures in a row are counted from the last chunk written.
        await loadExportFile(job, worker, file, {
          ...deps,
          onPage: (items, rows) => {
            inARow = 0;
            deps.onPage?.(items, rows);
          },
        });
        inARow = 0;
        return 0;
      } catch (error) {
        const where = `export backfill job ${job} of ${file.source_table}`;
        // What the job records and the command prints names the file, whatever failed (S3's
        // own NoSuchKey names nothing).
        const raw = (error as Error).message;
        const message = raw.includes(file.data_key)
          ? raw
          : `export data file ${file.data_key}: ${raw}`;
        if (credentialsRefused(error)) {
          await giveBack(worker, file.segment);
          // S3 answers a missing object 403, not 404, to a reader without s3:ListBucket
          // on its bucket (API reference, GetObject, "Permissions":
          // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
          failure ??= new Error(
            `${where}: ${message}; the loader stopped, the job left running: fix the ` +
              "credentials or the bucket's policy and run the command again (without " +
              "s3:ListBucket on the bucket, S3 also answers 403 for a file that is gone, " +
              "e.g. expired by the bucket's lifecycle: then cancel the job and export again)",
          );
          return 0;
        }
        if (!checkpointRefused(error) && transientLoadFailure(error)) {
          await giveBack(worker, file.segment);
          return later(where, message);
        }
        const failed = () => new Error(`${where}: ${message}`, { cause: error });
        try {
          if (!checkpointRefused(error) && await failSegment(worker, file.segment, message)) {
            failure ??= failed();
            deps.log?.(`${where}: ${message}`);
            return 0;
          }
        } catch (bookkeeping) {
          failure ??= failed();
          deps.log?.(`${where}: ${message}; failing the job failed too: ${bookkeeping}`);
          return 0;
        }
        // Given back at once if still its own (its checkpoint elsewhere than the chunk
        // began), so that it waits for no lease and counts no takeover; a stuck chunk's
        // file is not: its lease lapses, and the worker goes on under a new name.
        if ((error as { stuck?: boolean }).stuck) {
          deps.log?.(`${where}: ${worker} left file ${file.segment} (${file.data_key}): ${raw}`);
          worker = `${name}-${n}.${++stuckChunks}`;
          return 0;
        }
        await giveBack(worker, file.segment);
        deps.log?.(`${where}: ${worker} left file ${file.segment} (${file.data_key}): ${raw}`);
        return 0;
      }
    };
    while (failure === undefined) {
      const next = deps.fileSlots ? await whenAdmitted(deps.fileSlots, oneFile) : await oneFile();
      if (next === "over") return;
      if (next > 0 && failure === undefined) await sleep(next);
    }
  };
  // Every worker ends before this does: none is left writing with a pool its caller ends.
  const ends = await Promise.allSettled(Array.from({ length: workers }, (_, n) => work(n)));
  for (const end of ends) if (end.status === "rejected") failure ??= end.reason;
  if (failure !== undefined) throw failure;
  // The export's end, what its last file's statement left of it: chunk by chunk
  // (backfill_sweep.ts), a line every 10.
  // A chunk that lost to another statement (a deadlock, its 30 s lock timeout behind a
  // long merge of the table) or met the database gone for a moment (a dropped
  // connection, a restart, too many connections) is tried again, as every other
  // statement of the load is: each chunk is its own transaction, so the end goes on from
  // where the last one left it.
  for (let attempt = 1;; attempt++) {
    try {
      await sweepJob(deps.sql, String(job), () => false, {
        onChunk: (chunks) => {
          if (chunks % 10 === 0) {
            deps.log?.(
              `export backfill job ${job}: removing the rows the export does not hold, ${chunks} chunks so far`,
            );
          }
        },
      });
      break;
    } catch (error) {
      const passing = lostToAnother(error) || transientLoadFailure(error);
      if (!passing || attempt >= TRANSIENT_ATTEMPTS) {
        throw new Error(
          `export backfill job ${job}: its end (removing the rows the export does not hold) ` +
            `failed${passing ? ` ${attempt} times` : ""}: ${describeError(error)}; ` +
            "the job stays running, and the command run again ends it",
          { cause: error },
        );
      }
      deps.log?.(
        `export backfill job ${job}: a chunk of its end failed ` +
          `(${describeError(error)}); trying again in ${attempt} s`,
      );
      await sleep(1000 * attempt);
    }
  }
  const [ended] = await deps.sql<{ status: string; error: string | null }[]>`
    select status, error from sync.backfill_jobs where id = ${job}`;
  if (ended?.status !== "done") {
    throw new Error(
      `export backfill job ${job} ended ${ended?.status ?? "deleted"}` +
        (ended?.error ? `: ${ended.error}` : ""),
    );
  }
}
