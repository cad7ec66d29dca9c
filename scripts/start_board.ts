/**
 * The progress of `npm start` while its phases overlap (docs/interfaces.md, "npm
 * start"): one line per table (loading with a bar, then the import-worker's progress bar
 * from `sync.backfill_progress`, then its validation), and a line for the live phase.
 * On a terminal the block is redrawn in place; elsewhere it is printed every few seconds.
 * It also tells when a backfill job has finished, so that a table's validation can begin
 * as soon as its own backfill is done.
 *
 * @module
 */

import type postgres from "postgres";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { type Progress, progressLine } from "./backfill_jobs.ts";

const BAR = 24;

/** Where one table is. */
export type TableStage =
  | { stage: "waiting" }
  | { stage: "loading"; written: number; total: number }
  | { stage: "backfilling"; jobId: string; progress?: Progress }
  | { stage: "ready" }
  | { stage: "validating" }
  | { stage: "validated"; match: boolean };

/** The board's line for a table. */
export function stageLine(spec: TableSpec, at: TableStage, expectedItems: number): string {
  const name = spec.targetTable.padEnd(27);
  switch (at.stage) {
    case "waiting":
      return `${name} waiting to load`;
    case "loading": {
      const share = at.total > 0 ? Math.min(1, at.written / at.total) : 1;
      const filled = Math.round(share * BAR);
      return `${name} [${"#".repeat(filled)}${"-".repeat(BAR - filled)}] ${
        at.written.toLocaleString("en-US").padStart(7)
      }/${at.total.toLocaleString("en-US").padEnd(7)} items loading into DynamoDB Local`;
    }
    case "backfilling":
      return at.progress
        ? progressLine(at.progress, expectedItems)
        : `${name} backfill job ${at.jobId} queued`;
    case "ready":
      return `${name} backfilled; waiting for its turn to be validated`;
    case "validating":
      return `${name} backfilled; validating`;
    case "validated":
      return `${name} validated: ${at.match ? "match" : "MISMATCH"}`;
  }
}

/** How a backfill job ended. */
export interface JobEnd {
  status: string;
  error?: string;
}

/** The progress board of one run. */
export class StartBoard {
  readonly #stages = new Map<string, TableStage>();
  readonly #waiters = new Map<string, (end: JobEnd) => void>();
  #live = "live changes: waiting for the load";
  #printedLines = 0;
  #lastPlain = 0;
  #stopped = false;
  #loop?: Promise<void>;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly tables: readonly TableSpec[],
    private readonly expected: Record<string, number>,
    private readonly out: { tty: boolean; write: (text: string) => void; everyMs: number },
  ) {
    for (const spec of tables) this.#stages.set(spec.targetTable, { stage: "waiting" });
  }

  /** Sets where a table is. */
  set(table: string, stage: TableStage): void {
    this.#stages.set(table, stage);
  }

  /** Sets the live phase's line. */
  live(line: string): void {
    this.#live = `live changes: ${line}`;
  }

  /** Follows a backfill job; resolves when it has finished (done, failed or cancelled). */
  follow(table: string, jobId: string): Promise<JobEnd> {
    this.set(table, { stage: "backfilling", jobId });
    return new Promise((resolve) => this.#waiters.set(jobId, resolve));
  }

  /** The board's lines now. */
  lines(): string[] {
    return [
      ...this.tables.map((spec) =>
        stageLine(
          spec,
          this.#stages.get(spec.targetTable)!,
          this.expected[spec.sourceTable] ?? 0,
        )
      ),
      this.#live,
    ];
  }

  /** Reads the jobs' progress, settles the finished ones and draws; every 500 ms until stopped. */
  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        await this.tick();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
  }

  /** One round: progress of the jobs followed, finished ones settled, the board drawn. */
  async tick(): Promise<void> {
    const jobs = [...this.#waiters.keys()];
    if (jobs.length > 0) {
      const rows = await this.sql<(Progress & { error: string | null })[]>`
        select p.*, j.error from sync.backfill_progress p
        join sync.backfill_jobs j on j.id = p.job_id
        where p.job_id = any(${jobs}::bigint[])`;
      for (const row of rows) {
        const table = row.target_table;
        const at = this.#stages.get(table);
        if (at?.stage === "backfilling") this.set(table, { ...at, progress: row });
        if (["done", "failed", "cancelled"].includes(row.status)) {
          const resolve = this.#waiters.get(String(row.job_id))!;
          this.#waiters.delete(String(row.job_id));
          resolve({ status: row.status, error: row.error ?? undefined });
        }
      }
    }
    this.draw();
  }

  /** Draws the board: in place on a terminal, else at most every `everyMs`. */
  draw(force = false): void {
    const lines = this.lines();
    if (this.out.tty) {
      const up = this.#printedLines > 0 ? `\x1b[${this.#printedLines}A` : "";
      this.out.write(`${up}${lines.map((l) => `\x1b[2K${l}`).join("\n")}\n`);
      this.#printedLines = lines.length;
    } else if (force || Date.now() - this.#lastPlain >= this.out.everyMs) {
      this.out.write(`${lines.join("\n")}\n\n`);
      this.#lastPlain = Date.now();
    }
  }

  /** Stops the loop and draws the board a last time. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    this.draw(true);
  }
}
