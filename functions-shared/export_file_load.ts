/**
 * Loading one data file of an export backfill (docs/sync-semantics.md, "Backfills from an
 * export"), from its checkpoint to its end: read as a stream of pages
 * (functions-shared/export_items.ts) and written a chunk of pages at a time
 * (functions-shared/export_stage.ts: COPY into staging, then the one merge, every row
 * stamped with the job's read time, and the file's checkpoint, the lines loaded, in one
 * transaction). The workers that claim the files are export_load.ts's.
 *
 * @module
 */

import type postgres from "postgres";
import type { CpuMeter } from "./cpu_meter.ts";
import { type ExportPage, exportPages, ExportReadError } from "./export_items.ts";
import { carefulClaim, commitPageCarefully } from "./export_careful_pages.ts";
import { startsAtDurableCheckpoint } from "./export_checkpoint.ts";
import { commitChunk, DEFAULT_CHUNK_PAGES, RefusedChunk } from "./export_stage.ts";
import type { RunGate } from "./run_gate.ts";
import { whileHolding } from "./lease_holds.ts";
import { realPacing } from "./scan_pacing.ts";
import { LEASE_LOST } from "./segment_work.ts";
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
  /** The job's lease, in seconds: renewed while a chunk is written. */
  lease_seconds?: number;
}

/** What loading needs. */
export interface ExportLoadDeps {
  sql: postgres.Sql;
  /**
   * A data file's gzipped bytes, from the export's bucket; with `etag`, only those of the
   * object the manifest names (else an error that fails the file).
   */
  open: (key: string, etag?: string) => Promise<ReadableStream<Uint8Array>>;
  /**
   * When the export's items are taken as read (export_manifest.ts, `readAt`: its time
   * less two minutes): every row's stamp.
   */
  readAt: Date;
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
  /** Overrides READ_QUIET_MS, how long a file's read waits for a byte (tests). */
  readQuietMs?: number;
  /** Overrides {@link CHUNK_HOLD_MAX_MS} (tests). */
  chunkHoldMaxMs?: number;
  /** Overrides {@link STUCK_CHUNK_GRACE_MS} (tests). */
  stuckChunkGraceMs?: number;
  /** Waits while files in flight are held by other loaders, and before a file is read again (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * How long a chunk's lease is renewed at most: several times the statement timeout that
 * ends a chunk's statements (2 minutes for hosted's `postgres` role).
 */
export const CHUNK_HOLD_MAX_MS = 10 * 60_000;

/**
 * How long a chunk whose lease was left to lapse is still waited for: its statement ends
 * within the 2-minute statement timeout, or the connection is dead. postgres.js settles
 * no query whose connection closes after a COPY's data was sent (the stream already
 * ended), so without a bound the worker, and with it the whole command, would wait for
 * ever. Whatever the chunk does later, its checkpoint is refused (the lease is gone).
 */
export const STUCK_CHUNK_GRACE_MS = 3 * 60_000;

/** Reads of a file after the first whose bytes stopped mid-way (ExportReadError). */
export const FILE_READ_RETRIES = 3;

/**
 * Loads one claimed file from its checkpoint to its end, a chunk at a time
 * (functions-shared/export_stage.ts: pages COPYed into staging, one merge and the
 * checkpoint per transaction); answers the rows written. A chunk that Postgres refuses
 * for its data is written again page by page (export_careful_pages.ts), whose careful path
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
  const target = {
    job,
    segment: file.segment,
    worker,
    spec,
    readAt: deps.readAt,
    dataKey: file.data_key,
  };
  const chunkPages = deps.chunkPages ?? DEFAULT_CHUNK_PAGES;
  let line = Number(file.next_line);
  // Lines up to which pages are written one by one (a refused chunk's).
  let carefulTo = deps.pageByPage ? Infinity : -1;
  let rows = 0;
  let retries = 0;
  const sleep = deps.sleep ?? realPacing.sleep;
  // The file's lease, renewed at a third of its length while a chunk is written: the
  // chunk's transaction takes no lock on the file (export_stage.ts) and may run for
  // minutes (a merge of 20,000 items behind the table's merge lock, or past the statement
  // timeout into pages), and a lease run out meanwhile let a worker beside it take the
  // file over, refusing this chunk's checkpoint, then another, until the job failed. A
  // renewal that fails for another cause is tried again; the checkpoint judges.
  // A chunk still running after CHUNK_HOLD_MAX_MS is stuck (a connection gone dead
  // without an error): its lease is left to lapse, for another loader to take the file
  // over from its checkpoint.
  const renewEveryMs = (file.lease_seconds ?? 60) * 1000 / 3;
  let chunkStarted = 0;
  const holdMaxMs = deps.chunkHoldMaxMs ?? CHUNK_HOLD_MAX_MS;
  const holdFile = async () => {
    if (performance.now() - chunkStarted > holdMaxMs) {
      deps.log?.(
        `export backfill job ${job} file ${file.data_key} of ${file.source_table}: a chunk has ` +
          `run ${holdMaxMs / 60_000} minutes; its lease is left to lapse, for another ` +
          "loader to take the file over from its checkpoint",
      );
      return false;
    }
    return await deps.sql`select sync.renew_segment(${job}, ${file.segment}, ${worker})`.then(
      () => true,
      (error) => (error as { code?: string }).code !== LEASE_LOST,
    );
  };
  /**
   * `writing` (a chunk, or a page on its own, from line `from`), the file's lease held
   * meanwhile. Taken over all the same (a renewal found the lease another's): its
   * checkpoint is refused, and the file left to its holder.
   */
  const holdingFile = async <T>(writing: Promise<T>, from: number): Promise<T> => {
    chunkStarted = performance.now();
    if (await whileHolding(writing, holdFile, renewEveryMs) === "taken") {
      const graceMs = deps.stuckChunkGraceMs ?? STUCK_CHUNK_GRACE_MS;
      await endsWithin(writing, graceMs, () =>
        Object.assign(
          new Error(
            `export backfill job ${job} file ${file.data_key} of ${file.source_table}: a ` +
              `write from line ${from} did not end within ${graceMs / 60_000} minutes of ` +
              "its lease being left (its connection is gone, or Postgres holds it); the " +
              "file is left to the loader that takes it over from its checkpoint",
          ),
          // The lease is left to lapse, not given back: a takeover is counted (three in
          // a row fail the file), and this write's checkpoint, were its connection to
          // come back, is refused (export_load.ts renames the worker).
          { code: LEASE_LOST, stuck: true },
        ));
    }
    return await writing;
  };
  for (;;) {
    const body = await deps.open(file.data_key, file.etag ?? undefined);
    // Back to the checkpoint, the file is read from its start (gzip cannot seek): the
    // lease is renewed meanwhile, or deep in a large file it runs out and the file is
    // taken over (sync.renew_segment; SY001 when it was already, which leaves the file).
    const read = exportPages(body, data, file.page_size, line, {
      key: { table: spec.sourceTable, attributes: spec.sourceKey },
      skipChars: deps.skipChars,
      quietMs: deps.readQuietMs,
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
          // Commits on its own, after chunks a crash may still lose: it starts only where a
          // durable checkpoint is, and holds the lease while it waits (for the table's merge
          // lock, behind sibling chunks), as a chunk does.
          await startsAtDurableCheckpoint(deps.sql, target, line);
          rows += await holdingFile(
            commitPageCarefully(deps, carefulClaim(job, file), worker, page),
            line,
          );
          line = page.nextLine;
          if (page.items.length > 0) retries = 0; // a broken read counts from progress
          if (page.done) return rows;
          continue;
        }
        const chunk = await holdingFile(
          commitChunk(deps.sql, target, pages, line, chunkPages, deps),
          line,
        );
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

/**
 * Waits for `work` to settle, for at most `ms`; then throws `stuck()`, and whatever
 * `work` does later is ignored (no rejection is left unhandled).
 */
async function endsWithin(work: Promise<unknown>, ms: number, stuck: () => Error) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), ms));
  const settled = work.then(() => "settled" as const, () => "settled" as const);
  const first = await Promise.race([settled, late]);
  clearTimeout(timer);
  if (first === "late") throw stuck();
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
