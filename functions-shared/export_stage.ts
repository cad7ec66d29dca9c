/**
 * How an export backfill writes a chunk of a data file (issue 17; docs/sync-semantics.md,
 * "Backfills from an export"): several pages of items, mapped page by page, are `COPY`ed
 * into a staging table that lives for one transaction, then merged in ONE call of the
 * one merge, `sync.merge_changes`, with the file's checkpoint, and committed:
 *
 * ```sql
 * begin;
 * create temp table export_staged_changes (ord ..., change jsonb) on commit drop;
 * copy export_staged_changes (change) from stdin;          -- a page at a time
 * with merged as (select applied from sync.merge_changes(target,
 *                   (select jsonb_agg(change order by ord) from export_staged_changes)))
 * select sync.checkpoint_segment(job, file, worker, {"line": n}, items, applied, done);
 * commit;
 * ```
 *
 * The rows go through the same guarded SQL as every other write (the staged changes are
 * handed to `sync.merge_changes` as its JSON array, built by the server), so the ordering
 * guard, the tombstones and the collapsed tables' observations hold as for any page. What
 * the chunk saves is the merge's fixed costs paid once per chunk instead of once per page:
 * a collapsed table's row (a visitor, with its sessions flattened by a trigger) is
 * recomputed and written once per chunk instead of once in each page that observes it,
 * and the checkpoint's and the lock's round trips are paid once.
 *
 * The client holds one page at a time (the COPY stream is fed page by page from the
 * file's stream); Postgres holds the chunk, in a temporary table, until the commit.
 *
 * Items that do not map are dead-lettered in the same transaction (table, key, cause). A
 * chunk that Postgres refuses for its data (SQLSTATE class 22, 23 or 54) writes nothing
 * and is thrown as {@link RefusedChunk}: the loader then writes that chunk's lines again
 * page by page through `commitPage`'s careful path, which isolates and dead-letters the
 * refused change (functions-shared/export_load.ts).
 *
 * @module
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type postgres from "postgres";
import { toWire } from "./change_wire.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import { recordDeadLetters } from "./dead_letter_writer.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import type { ExportPage } from "./export_items.ts";
import { type DeadLetter, mapScannedItem } from "./record_mapping.ts";
import { isDataError } from "./sync_db.ts";
import type { TableSpec } from "./table_registry.ts";

/** The pages a chunk holds, by default (20,000 items at the default page of 1,000). */
export const DEFAULT_CHUNK_PAGES = 20;

/** A chunk's place in its file and job. */
export interface ChunkTarget {
  job: string;
  segment: number;
  worker: string;
  spec: TableSpec;
  /** The export's time: every row's stamp. */
  exportTime: Date;
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
 * A page's items as COPY text lines of the staging table's one column (the change's wire
 * JSON; COPY's text format needs only its backslashes doubled, as JSON text never holds
 * a raw tab or newline), and the items that do not map, as dead letters.
 */
export function pageCopyText(
  spec: TableSpec,
  items: ExportPage["items"],
  exportTime: Date,
): { text: string; changes: number; deadLetters: DeadLetter[] } {
  const lines: string[] = [];
  const deadLetters: DeadLetter[] = [];
  for (const item of items) {
    const mapped = mapScannedItem(spec, item, exportTime);
    if (!mapped.ok) {
      deadLetters.push(mapped.deadLetter);
      continue;
    }
    lines.push(encodeJson(toWire(mapped.value.change)).replaceAll("\\", "\\\\"));
  }
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
  // The file's pages as COPY text, one page in memory at a time.
  async function* copyText(): AsyncGenerator<string> {
    while (taken < maxPages && !done) {
      const next = await pages.next();
      if (next.done) return;
      taken++;
      const page = next.value;
      const staged = deps.cpu.measure(() =>
        pageCopyText(target.spec, page.items, target.exportTime)
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
      await tx.unsafe(
        `create temp table export_staged_changes (
           ord bigint generated always as identity, change jsonb not null) on commit drop`,
      );
      const writable = await tx.unsafe(`copy export_staged_changes (change) from stdin`)
        .writable();
      await pipeline(Readable.from(copyText()), writable);
      if (taken === 0) return null;
      if (deadLetters.length > 0) {
        await recordDeadLetters(tx, deadLetters);
        deps.log?.(
          `export backfill job ${target.job} file ${target.segment} of ${target.spec.sourceTable}: ${deadLetters.length} item(s) dead-lettered`,
        );
      }
      const checkpoint = [
        target.job,
        target.segment,
        target.worker,
        JSON.stringify({ line: nextLine }),
        items,
      ];
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
        `with merged as (
           select applied::int as applied from sync.merge_changes($6,
             (select jsonb_agg(s.change order by s.ord) from export_staged_changes s)))
         select sync.checkpoint_segment($1, $2, $3, $4::text::jsonb, $5,
                  (select applied from merged), $7) as checkpointed,
                (select applied from merged) as applied`,
        [...checkpoint, target.spec.targetTable, done],
      );
      return Number(row.applied);
    });
    if (result === null) return null;
    return { nextLine, items, rows: result, deadLettered: deadLetters.length, done };
  } catch (error) {
    if (isDataError(error)) throw new RefusedChunk(fromLine, nextLine, error as Error);
    throw error;
  }
}
