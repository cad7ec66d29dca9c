/**
 * An export file's pages written one at a time (export_file_load.ts takes this way for
 * the lines of a chunk Postgres refused, or that outlasted the statement timeout):
 * through the backfill's `commitPage`, whose careful path dead-letters a refused change
 * alone, each page with the file's checkpoint.
 *
 * @module
 */

import type postgres from "postgres";
import { commitPage } from "./backfill_page.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import type { ExportPage } from "./export_items.ts";
import { EndCheckpointTimedOut } from "./export_failures.ts";
import { isStatementTimeout } from "./db_errors.ts";
import type { Claim } from "./segment_work.ts";

/** What writing a page needs (export_file_load.ts, ExportLoadDeps). */
export interface CarefulPageDeps {
  sql: postgres.Sql;
  /** Every row's stamp: the export's read time. */
  readAt: Date;
  cpu: CpuMeter;
  onPage?: (items: number, rows: number) => void;
  log?: (line: string) => void;
}

/**
 * Writes `page` of the file `claim` holds, as `worker`; answers the rows written. The
 * file's last page holds its leftover lines: they are written first, and the checkpoint
 * that ends the file (and may end the job, with its sweep) after, on its own, so that a
 * timeout of that end is told from a page too big for the statement (which fails the
 * file) and thrown as {@link EndCheckpointTimedOut}, one that may pass, as a chunk of no
 * lines is (export_stage.ts).
 */
export async function commitPageCarefully(
  deps: CarefulPageDeps,
  claim: Claim,
  worker: string,
  page: ExportPage,
): Promise<number> {
  const nextKey = JSON.stringify({ line: page.nextLine });
  let rows = 0;
  if (page.items.length > 0) {
    const committed = await commitPage(
      deps.sql,
      claim,
      { items: page.items, readAt: deps.readAt, nextKey: null },
      { worker, nextKey, items: page.items.length, done: false },
      { cpu: deps.cpu, log: deps.log },
    );
    rows = committed.rows;
    deps.onPage?.(page.items.length, rows);
  }
  if (!page.done) return rows;
  await commitPage(
    deps.sql,
    claim,
    { items: [], readAt: deps.readAt, nextKey: null },
    { worker, nextKey, items: 0, done: true },
    { cpu: deps.cpu, log: deps.log },
  ).catch((error) => {
    throw isStatementTimeout(error) ? new EndCheckpointTimedOut(error as Error) : error;
  });
  if (page.items.length === 0) deps.onPage?.(0, 0);
  return rows;
}

/** The claim `commitPage` takes, for a file's page. */
export function carefulClaim(
  job: string,
  file: { segment: number; source_table: string; target_table: string; page_size: number },
): Claim {
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
