/**
 * Loading an export backfill's data files (docs/sync-semantics.md, "Backfills from an
 * export"): workers claim the job's files (`sync.claim_export_file`), read each as a
 * stream of pages (functions-shared/export_items.ts), and write them a chunk of pages at
 * a time (functions-shared/export_stage.ts: COPY into staging, then the one merge, every
 * row stamped with the export time, and the file's checkpoint, the lines loaded, in one
 * transaction). A file whose worker died is taken up from its checkpoint;
 * a file that is not what its manifest says fails its segment, and with it the job,
 * with the file's key, line and cause.
 *
 * @module
 */

import type postgres from "postgres";
import { sweepJob } from "./backfill_sweep.ts";
import { commitPage } from "./backfill_page.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import { credentialsRefused, TRANSIENT_ATTEMPTS, transientLoadFailure } from "./export_failures.ts";
import { type ExportPage, exportPages, ExportReadError } from "./export_items.ts";
import { commitChunk, DEFAULT_CHUNK_PAGES, RefusedChunk } from "./export_stage.ts";
import { type RunGate, whenAdmitted } from "./run_gate.ts";
import { realPacing } from "./scan_pacing.ts";
import { checkpointRefused, type Claim } from "./segment_work.ts";
import { bySourceTable } from "./table_registry.ts";

/** A data file claimed by `sync.claim_export_file`. */
export interface ExportFileClaim {
  segment: number;
  data_key: string;
  item_count: number;
  md5: string;
  next_line: number;
  source_table: string;
  target_table: string;
  page_size: number;
  /** The S3 ETag the manifest gives the file (none in jobs made before it was kept). */
  etag?: string | null;
}

/** What loading needs. */
export interface ExportLoadDeps {
  sql: postgres.Sql;
  /**
   * A data file's gzipped bytes, from the export's bucket; with `etag`, only those of the
   * object the manifest names (else an error that fails the file).
   */
  open: (key: string, etag?: string) => Promise<ReadableStream<Uint8Array>>;
  /** The export's time: every row's stamp. */
  exportTime: Date;
  cpu: CpuMeter;
  /** The pages of a chunk (one transaction), by default {@link DEFAULT_CHUNK_PAGES}. */
  chunkPages?: number;
  /**
   * Write every page on its own through `commitPage` instead of in chunks (how files were
   * loaded before issue 17's staging; the bench's same-run comparison).
   */
  pageByPage?: boolean;
  /** After each chunk (or page) committed: the items read and the rows written. */
  onPage?: (items: number, rows: number) => void;
  log?: (line: string) => void;
  /**
   * The files loaded at once, shared by every job's workers of a command
   * (scripts/backfill.ts): a worker claims a file only once it has a place. None: no limit.
   */
  fileSlots?: RunGate;
  /** Text read past, back to a checkpoint, between lease renewals (tests make it small). */
  skipChars?: number;
  /** Waits while files in flight are held by other loaders, and before a file is read again (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
}

/** Reads of a file after the first whose bytes stopped mid-way (ExportReadError). */
export const FILE_READ_RETRIES = 3;

/**
 * Loads one claimed file from its checkpoint to its end, a chunk at a time
 * (functions-shared/export_stage.ts: pages COPYed into staging, one merge and the
 * checkpoint per transaction); answers the rows written. A chunk that Postgres refuses
 * for its data is written again page by page through `commitPage`, whose careful path
 * dead-letters the refused change alone; then chunks go on. A file whose bytes stop
 * mid-way (a connection to S3 broken) is read again from its last checkpoint, up to
 * {@link FILE_READ_RETRIES} times, 1, 2 and 4 s apart: the chunk it was in was not
 * committed, so nothing is written twice.
 */
export async function loadExportFile(
  job: string,
  worker: string,
  file: ExportFileClaim,
  deps: ExportLoadDeps,
): Promise<number> {
  const spec = bySourceTable(file.source_table);
  if (!spec) throw new Error(`export backfill job ${job}: ${file.source_table} is not registered`);
  const data = {
    key: file.data_key,
    itemCount: Number(file.item_count),
    md5Checksum: file.md5,
    etag: file.etag ?? "",
  };
  const target = { job, segment: file.segment, worker, spec, exportTime: deps.exportTime };
  const chunkPages = deps.chunkPages ?? DEFAULT_CHUNK_PAGES;
  let line = Number(file.next_line);
  // Lines up to which pages are written one by one (a refused chunk's).
  let carefulTo = deps.pageByPage ? Infinity : -1;
  let rows = 0;
  let retries = 0;
  const sleep = deps.sleep ?? realPacing.sleep;
  for (;;) {
    const body = await deps.open(file.data_key, file.etag ?? undefined);
    // Back to the checkpoint, the file is read from its start (gzip cannot seek): the
    // lease is renewed meanwhile, or deep in a large file it runs out and the file is
    // taken over (sync.renew_segment; SY001 when it was already, which leaves the file).
    const read = exportPages(body, data, file.page_size, line, {
      skipChars: deps.skipChars,
      whileSkipping: () =>
        deps.sql`select sync.renew_segment(${job}, ${file.segment}, ${worker})`.then(() => {}),
    })[Symbol.asyncIterator]();
    let pages: AsyncIterator<ExportPage> = read;
    try {
      // A file taken up reads back to its checkpoint before any chunk's transaction
      // begins: that transaction holds a connection, and the renewals need another (with
      // a pool of one they would wait for it for ever).
      if (line > 0) pages = headFirst(await read.next(), read);
      for (;;) {
        if (line < carefulTo) {
          const next = await pages.next();
          if (next.done) return rows;
          const page = next.value;
          const committed = await commitPage(
            deps.sql,
            carefulClaim(job, file),
            { items: page.items, readAt: deps.exportTime, nextKey: null },
            {
              worker,
              nextKey: JSON.stringify({ line: page.nextLine }),
              items: page.items.length,
              done: page.done,
            },
            { cpu: deps.cpu, log: deps.log },
          );
          line = page.nextLine;
          rows += committed.rows;
          retries = 0;
          deps.onPage?.(page.items.length, committed.rows);
          if (page.done) return rows;
          continue;
        }
        const chunk = await commitChunk(deps.sql, target, pages, line, chunkPages, deps);
        if (chunk === null) return rows;
        line = chunk.nextLine;
        rows += chunk.rows;
        retries = 0; // a broken read is counted from the last progress
        deps.onPage?.(chunk.items, chunk.rows);
        if (chunk.done) return rows;
      }
    } catch (error) {
      if (error instanceof ExportReadError && retries < FILE_READ_RETRIES) {
        const waitMs = 1000 * 2 ** retries++;
        deps.log?.(
          `export backfill job ${job} file ${file.data_key} of ${file.source_table}: ${error.message}; reading it again from line ${line} in ${waitMs} ms`,
        );
        await sleep(waitMs);
        continue;
      }
      if (!(error instanceof RefusedChunk)) throw error;
      deps.log?.(
        `export backfill job ${job} file ${file.data_key} of ${file.source_table}: ${error.message}; writing those lines page by page`,
      );
      carefulTo = error.toLine;
    } finally {
      await read.return?.(undefined);
      // A chunk that failed before its first page never started the pages: the object's
      // bytes, never read, would hold their connection to S3 until S3 dropped it.
      if (!body.locked) await body.cancel().catch(() => {});
    }
  }
}

/** `rest`'s pages with `head`, already read from it, first. */
function headFirst(
  head: IteratorResult<ExportPage>,
  rest: AsyncIterator<ExportPage>,
): AsyncIterator<ExportPage> {
  let first: IteratorResult<ExportPage> | undefined = head;
  return {
    next: () => {
      const taken = first;
      first = undefined;
      return taken ? Promise.resolve(taken) : rest.next();
    },
  };
}

/** The claim `commitPage` takes, for a file's page. */
function carefulClaim(job: string, file: ExportFileClaim): Claim {
  return {
    job_id: job,
    segment: file.segment,
    total_segments: 0,
    source_table: file.source_table,
    target_table: file.target_table,
    region: "",
    exclusive_start_key: null,
    page_size: file.page_size,
  };
}

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
    const worker = `${name}-${n}`;
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
          failure ??= new Error(
            `${where}: ${message}; the loader stopped, the job left running: fix the ` +
              "credentials or the bucket's policy and run the command again",
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
        // began), so that it waits for no lease and counts no takeover.
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
  await sweepJob(deps.sql, String(job), () => false, {
    onChunk: (chunks) => {
      if (chunks % 10 === 0) {
        deps.log?.(
          `export backfill job ${job}: removing the rows the export does not hold, ${chunks} chunks so far`,
        );
      }
    },
  });
  const [ended] = await deps.sql<{ status: string; error: string | null }[]>`
    select status, error from sync.backfill_jobs where id = ${job}`;
  if (ended?.status !== "done") {
    throw new Error(
      `export backfill job ${job} ended ${ended?.status ?? "deleted"}` +
        (ended?.error ? `: ${ended.error}` : ""),
    );
  }
}
