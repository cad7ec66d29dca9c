/**
 * Where an export file's checkpoint is, for a write that must start there: a chunk
 * (export_stage.ts) or a page written on its own (export_careful_pages.ts). Chunks commit
 * without waiting for their WAL, so a crash may lose the last ones committed; a write
 * that went on past them would move the checkpoint over lines nobody wrote, and the file
 * would end done without them. Such a write is refused as a lease lost: the file is read
 * again from the checkpoint that lasted.
 *
 * @module
 */

import type postgres from "postgres";
import { LEASE_LOST } from "./segment_work.ts";
import type { TableSpec } from "./table_registry.ts";

/** A file of an export backfill job, as the worker holding its lease writes it. */
export interface FileHolder {
  job: string;
  segment: number;
  worker: string;
  spec: TableSpec;
}

/**
 * The line of the file's checkpoint while `file.worker` holds its lease (none: it does
 * not). No row lock: only the lease's holder moves the checkpoint, and
 * sync.checkpoint_segment refuses a holder that lost it meanwhile.
 */
export async function checkpointLine(
  sql: postgres.Sql | postgres.TransactionSql,
  file: FileHolder,
): Promise<number | undefined> {
  const [here] = await sql.unsafe(
    `select coalesce((exclusive_start_key ->> 'line')::bigint, 0)::text as line
     from sync.backfill_segments
     where job_id = $1 and segment = $2 and lease_owner = $3 and status = 'running'`,
    [file.job, file.segment, file.worker],
  );
  return here ? Number(here.line) : undefined;
}

/** Throws, as a lease lost, unless the checkpoint read (`at`) is `from`, where a write starts. */
export function mustStartAt(file: FileHolder, at: number | undefined, from: number): void {
  if (at === from) return;
  throw Object.assign(
    new Error(
      `export backfill job ${file.job} file ${file.segment} of ${file.spec.sourceTable}: ` +
        (at !== undefined
          ? `its checkpoint is at line ${at}, not ${from} where this write starts (a chunk committed without waiting for its WAL was lost); the file is read again from its checkpoint`
          : `worker ${file.worker} no longer holds it; another worker took over`),
    ),
    { code: LEASE_LOST },
  );
}

/**
 * Makes every commit before it durable, then checks that the checkpoint is at `from`: the
 * lease renewed (a write, committed waiting for its WAL, which flushes the chunks' WAL
 * before it too) and the checkpoint read in one transaction. For a write that commits on
 * its own (a page after a refused chunk), which would otherwise take its place after
 * chunks a crash may still lose.
 */
export async function startsAtDurableCheckpoint(
  sql: postgres.Sql,
  file: FileHolder,
  from: number,
): Promise<void> {
  const at = await sql.begin(async (tx) => {
    await tx`select sync.renew_segment(${file.job}, ${file.segment}, ${file.worker})`;
    return await checkpointLine(tx, file);
  });
  mustStartAt(file, at, from);
}
