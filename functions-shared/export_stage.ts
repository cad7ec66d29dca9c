/**
 * How an export backfill writes a chunk of a data file (issue 17; docs/sync-semantics.md,
 * "Backfills from an export"): several pages of items, mapped page by page, are `COPY`ed
 * into the staging table, then merged in one statement with the file's checkpoint, in
 * one transaction:
 *
 * ```sql
 * begin;
 * copy sync.staged_changes (ord, op, row, seq, ...) from stdin;   -- a page at a time
 * with merged as (select applied from sync.merge_staged(target))
 * select sync.checkpoint_segment(job, file, worker, {"line": n}, items, applied, done);
 * commit;
 * ```
 *
 * `sync.merge_staged` (supabase/migrations/20261128001400_compiled_merges.sql) checks
 * the staged changes as `sync.merge_changes` checks its JSON array, takes the same lock,
 * and runs the table's staged merge: the statements of its compiled merge, derived from
 * them with the staging table as their source of changes, so the ordering guard, the
 * tombstones and the collapsed tables' observations hold as for any page. What the chunk
 * saves: the JSON array of every change, which Postgres parsed and checked change by
 * change, and the merge's fixed costs (a collapsed table's row is recomputed once per
 * chunk, not once in every page that observes it; one checkpoint, one lock).
 *
 * The client holds a page or two at a time (the COPY stream is fed page by page from the
 * file's stream, and `Readable.from` reads one page ahead of the socket's pushback);
 * Postgres holds the chunk, in its staging rows, until the commit.
 *
 * Items that do not map are dead-lettered in the same transaction (table, key, cause). A
 * chunk that Postgres refuses for its data (SQLSTATE class 22, 23 or 54) writes nothing
 * and is thrown as {@link RefusedChunk} (so is one that outlasts the statement timeout):
 * the loader then writes that chunk's lines again
 * page by page through `commitPage`'s careful path, which isolates and dead-letters the
 * refused change (functions-shared/export_file_load.ts).
 *
 * @module
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type postgres from "postgres";
import { CHANGE_WIRE_FIELDS, type ChangeWire, toWire } from "./change_wire.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import { logDeadLetters, recordDeadLetters } from "./dead_letter_writer.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import { EndCheckpointTimedOut } from "./export_failures.ts";
import type { ExportPage } from "./export_items.ts";
import { type DeadLetter, mapScannedItem } from "./record_mapping.ts";
import { checkpointLine, type FileHolder, mustStartAt } from "./export_checkpoint.ts";
import { isDataError, isStatementTimeout } from "./db_errors.ts";
import type { TableSpec } from "./table_registry.ts";

/** The pages a chunk holds, by default (20,000 items at the default page of 1,000). */
export const DEFAULT_CHUNK_PAGES = 20;

/** A chunk's place in its file and job. */
export interface ChunkTarget extends FileHolder {
  /** When the export's items are taken as read (export_manifest.ts): every row's stamp. */
  readAt: Date;
  /** The file's S3 key, for what the log says of it. */
  dataKey: string;
}

/** What a committed chunk did. */
export interface ChunkResult {
  /** The lines of the file read up to the chunk's end (its checkpoint). */
  nextLine: number;
  items: number;
  rows: number;
  deadLettered: number;
  done: boolean;
}

/** A chunk Postgres refused for its data: nothing of it was written. */
export class RefusedChunk extends Error {
  constructor(readonly fromLine: number, readonly toLine: number, override readonly cause: Error) {
    super(`lines ${fromLine + 1} to ${toLine}: ${cause.message}`);
    this.name = "RefusedChunk";
  }
}

/**
 * The staging table's columns, in the order of a COPY line's fields: the change's line in
 * its file, then the wire's fields in the SQL type's order (change_wire.ts), so the two
 * cannot drift apart.
 */
export const STAGED_COLUMNS: readonly string[] = ["ord", ...CHANGE_WIRE_FIELDS];

/** One wire field as a COPY field: the row and the range key as JSON, the rest as text. */
function wireField(wire: ChangeWire, field: keyof ChangeWire): string {
  const value = wire[field];
  if (field === "row" || field === "range_key") {
    return copyField(value === undefined ? null : encodeJson(value));
  }
  return copyField(value as string | number | null | undefined);
}

/**
 * A value as a field of COPY's text format: `\N` for null; else the text with
 * backslashes, tabs, newlines and carriage returns escaped
 * (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format").
 */
export function copyField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "\\N";
  return String(value).replace(
    /[\\\t\n\r]/g,
    (c) => c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

/**
 * A page's items as COPY text lines of the staging table (sync.staged_changes, its
 * {@link STAGED_COLUMNS}: each change's line in the file, then its wire fields,
 * functions-shared/change_wire.ts), and the items that do not map, as dead letters.
 * `firstLine` is the 1-based line of the page's first item.
 */
export function pageCopyText(
  spec: TableSpec,
  items: ExportPage["items"],
  readAt: Date,
  firstLine: number,
): { text: string; changes: number; deadLetters: DeadLetter[] } {
  const lines: string[] = [];
  const deadLetters: DeadLetter[] = [];
  items.forEach((item, i) => {
    const mapped = mapScannedItem(spec, item, readAt);
    if (!mapped.ok) {
      deadLetters.push(mapped.deadLetter);
      return;
    }
    const wire = toWire(mapped.value.change);
    lines.push(
      [copyField(firstLine + i), ...CHANGE_WIRE_FIELDS.map((f) => wireField(wire, f))].join("\t"),
    );
  });
  return {
    text: lines.length > 0 ? lines.join("\n") + "\n" : "",
    changes: lines.length,
    deadLetters,
  };
}

/**
 * Takes up to `maxPages` pages from `pages` (the file's reader, positioned at
 * `fromLine`), stages and merges them with the file's checkpoint in one transaction.
 * Answers null when the reader had no page left.
 */
export async function commitChunk(
  sql: postgres.Sql,
  target: ChunkTarget,
  pages: AsyncIterator<ExportPage>,
  fromLine: number,
  maxPages: number,
  deps: { cpu: CpuMeter; log?: (line: string) => void },
): Promise<ChunkResult | null> {
  let nextLine = fromLine;
  let items = 0;
  let changes = 0;
  let done = false;
  let taken = 0;
  const deadLetters: DeadLetter[] = [];
  // The file's pages as COPY text, one page in memory at a time. A dead letter keeps its
  // item until the commit, so the chunk ends with the first page that has any: what it
  // holds stays one page's items, even in a file whose every item is refused.
  async function* copyText(): AsyncGenerator<string> {
    while (taken < maxPages && !done && deadLetters.length === 0) {
      const next = await pages.next();
      if (next.done) return;
      taken++;
      const page = next.value;
      const staged = deps.cpu.measure(() =>
        pageCopyText(
          target.spec,
          page.items,
          target.readAt,
          page.nextLine - page.items.length + 1,
        )
      );
      nextLine = page.nextLine;
      items += page.items.length;
      changes += staged.changes;
      done = page.done;
      deadLetters.push(...staged.deadLetters);
      if (staged.text !== "") yield staged.text;
    }
  }
  try {
    const result = await sql.begin(async (tx) => {
      // The chunk's commit does not wait for its WAL to reach the disk: a crash of the
      // server may lose the last chunks committed, but each with its own checkpoint, "as
      // if those transactions had been aborted cleanly"
      // (https://www.postgresql.org/docs/current/wal-async-commit.html), so the load goes
      // on from the last checkpoint that lasted, with nothing lost or written twice.
      await tx.unsafe(`set local synchronous_commit = off`);
      // So the chunk starts where the file's checkpoint is, and is refused (as a lease
      // lost) when not: after a crash that lost the last chunks committed (above), a
      // worker that went on reading would otherwise write its next chunk's checkpoint past
      // lines nobody wrote (export_checkpoint.ts). No row lock: a lock held through the
      // COPY would keep a stalled chunk's file from being taken over.
      mustStartAt(target, await checkpointLine(tx, target), fromLine);
      const writable = await tx.unsafe(
        `copy sync.staged_changes (${STAGED_COLUMNS.join(", ")}) from stdin`,
      ).writable();
      await pipeline(Readable.from(copyText()), writable);
      if (taken === 0) return null;
      // A file's last chunk waits for its WAL after all: its commit may end the job (the
      // last file done: the sweep, the job's status), and the loader says the job is done
      // once it returns. Lost in a crash after that, the job would be left running, with
      // nobody to read it again. One flush per file (the setting in force at the commit
      // is the one that counts).
      if (done) await tx.unsafe(`set local synchronous_commit = on`);
      const checkpoint = [
        target.job,
        target.segment,
        target.worker,
        JSON.stringify({ line: nextLine }),
        items,
      ];
      // The dead letters before the checkpoint, whose statement may end the job (the last
      // file's: its sweep, which spares dead-lettered keys, runs inline), and after the
      // table's merge lock, as every other writer takes them: a letter's fingerprint is
      // its content, so a backfill or the replay may lock the same row, and the two
      // orders deadlocked (a review reproduced it with the replay).
      if (deadLetters.length > 0) {
        await tx.unsafe(`select sync.enter_merge($1)`, [target.spec.targetTable]);
        await recordDeadLetters(tx, deadLetters);
      }
      if (changes === 0) {
        await tx.unsafe(
          `select sync.checkpoint_segment($1, $2, $3, $4::text::jsonb, $5, 0, $6)`,
          [...checkpoint, done],
        );
        return 0;
      }
      // The checkpoint takes the merge's count as an argument, so the merge runs first;
      // the CTE, read twice, runs once (as in backfill_page.ts).
      const [row] = await tx.unsafe(
        `with merged as (select applied::int as applied from sync.merge_staged($6))
         select sync.checkpoint_segment($1, $2, $3, $4::text::jsonb, $5,
                  (select applied from merged), $7) as checkpointed,
                (select applied from merged) as applied`,
        [...checkpoint, target.spec.targetTable, done],
      );
      return Number(row.applied);
    });
    if (result === null) return null;
    // Once committed (a lost lease or a refused chunk rolls them back): each letter's
    // file, key and cause.
    if (deps.log && deadLetters.length > 0) {
      logDeadLetters(
        deadLetters,
        (l) =>
          `export backfill job ${target.job} file ${target.dataKey} of ${target.spec.sourceTable}: dead letter: ${l.reason}`,
        deps.log,
      );
    }
    return { nextLine, items, rows: result, deadLettered: deadLetters.length, done };
  } catch (error) {
    // Refused for its data, or too big for the statement timeout (57014; the hosted
    // `postgres` role's is 2 minutes): written again page by page, where a page that
    // still times out fails its file, naming it (a timeout that would come back every time
    // must not be retried as if it might pass). A chunk of no lines (a file's done page
    // alone, whose checkpoint ends the job) has no pages to write instead: a refusal is
    // thrown as it is (the loader would read the file again for ever), a timeout as one
    // that may pass.
    const timedOut = isStatementTimeout(error);
    if ((isDataError(error) || timedOut) && nextLine > fromLine) {
      throw new RefusedChunk(fromLine, nextLine, error as Error);
    }
    if (timedOut) throw new EndCheckpointTimedOut(error as Error, done);
    throw error;
  }
}
