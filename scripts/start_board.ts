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
import { type Progress, progressLine, stallNotice } from "./backfill_jobs.ts";
import { BarScreen } from "./bar_screen.ts";

/**
 * How long the board goes on trying to read the backfills' progress before it fails the
 * jobs it follows (the database gone for good): a blip is tried again, and said once.
 */
export const PROGRESS_READ_GIVE_UP_MS = 60_000;

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

/** Where the board writes, and how often when not on a terminal. */
export interface BoardOutput {
  tty: boolean;
  write: (text: string) => void;
  everyMs: number;
  /** The clock, in milliseconds (tests set it). */
  now?: () => number;
}

/** A job followed: its table, and its waiter's settling. */
interface Followed {
  table: string;
  resolve: (end: JobEnd) => void;
  reject: (error: Error) => void;
}

/** The progress board of one run. */
export class StartBoard {
  readonly #stages = new Map<string, TableStage>();
  readonly #followed = new Map<string, Followed>();
  /** The jobs whose stall was told, until a worker works on them again. */
  readonly #stalled = new Set<string>();
  readonly #screen: BarScreen;
  readonly #now: () => number;
  #live = "live changes: waiting for the load";
  #lastPlain = 0;
  /** Since when the progress could not be read (undefined: it was, last time). */
  #failingSince?: number;
  #stopped = false;
  #loop?: Promise<void>;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly tables: readonly TableSpec[],
    private readonly expected: Record<string, number>,
    private readonly out: BoardOutput,
  ) {
    for (const spec of tables) this.#stages.set(spec.targetTable, { stage: "waiting" });
    this.#screen = new BarScreen(out.tty, out.write);
    this.#now = out.now ?? Date.now;
  }

  /** Sets where a table is. */
  set(table: string, stage: TableStage): void {
    this.#stages.set(table, stage);
  }

  /** Sets the live phase's line. */
  live(line: string): void {
    this.#live = `live changes: ${line}`;
  }

  /** Prints `line` above the board (on a terminal, where a redraw would draw over it). */
  note(line: string): void {
    this.#screen.log(line);
  }

  /**
   * Follows a backfill job; resolves when it has finished (done, failed or cancelled),
   * rejects when its progress could not be read for {@link PROGRESS_READ_GIVE_UP_MS}.
   */
  follow(table: string, jobId: string): Promise<JobEnd> {
    this.set(table, { stage: "backfilling", jobId });
    return new Promise((resolve, reject) => this.#followed.set(jobId, { table, resolve, reject }));
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

  /** Runs {@link round} every 500 ms until stopped. */
  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        await this.round();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
  }

  /**
   * One round that never throws: a {@link tick}, or, when the progress cannot be read,
   * a line saying so (once), the board drawn all the same, and the jobs followed failed
   * once it has not been read for {@link PROGRESS_READ_GIVE_UP_MS}.
   */
  async round(): Promise<void> {
    try {
      await this.tick();
      this.#failingSince = undefined;
    } catch (error) {
      const cause = (error as Error).message;
      const now = this.#now();
      if (this.#failingSince === undefined) {
        this.#failingSince = now;
        this.note(`npm start: the backfills' progress could not be read (${cause}); trying again`);
      } else if (now - this.#failingSince >= PROGRESS_READ_GIVE_UP_MS) {
        const seconds = Math.round((now - this.#failingSince) / 1000);
        for (const [jobId, job] of this.#followed) {
          job.reject(
            new Error(
              `backfill job ${jobId} of ${job.table}: its progress (sync.backfill_progress) ` +
                `could not be read for ${seconds} s: ${cause}`,
            ),
          );
        }
        this.#followed.clear();
      }
      this.draw();
    }
  }

  /** One round: progress of the jobs followed, finished ones settled, the board drawn. */
  async tick(): Promise<void> {
    const jobs = [...this.#followed.keys()];
    if (jobs.length > 0) {
      const rows = await this.sql<(Progress & { error: string | null })[]>`
        select p.*, j.error from sync.backfill_progress p
        join sync.backfill_jobs j on j.id = p.job_id
        where p.job_id = any(${jobs}::bigint[])`;
      for (const row of rows) {
        const table = row.target_table;
        const at = this.#stages.get(table);
        if (at?.stage === "backfilling") this.set(table, { ...at, progress: row });
        this.#tellStall(row);
        const job = this.#followed.get(String(row.job_id));
        if (job && ["done", "failed", "cancelled"].includes(row.status)) {
          this.#followed.delete(String(row.job_id));
          job.resolve({ status: row.status, error: row.error ?? undefined });
        }
      }
    }
    this.draw();
  }

  /** Says, once, that no worker works on a job (backfill_jobs.ts's {@link stallNotice}). */
  #tellStall(row: Progress): void {
    const notice = stallNotice(row, this.#now());
    if (notice && !this.#stalled.has(row.job_id)) this.note(notice);
    if (notice) this.#stalled.add(row.job_id);
    else this.#stalled.delete(row.job_id);
  }

  /** Draws the board: in place on a terminal, else at most every `everyMs`. */
  draw(force = false): void {
    if (this.out.tty) return this.#screen.bars(this.lines());
    if (force || this.#now() - this.#lastPlain >= this.out.everyMs) {
      this.#screen.bars([...this.lines(), ""]);
      this.#lastPlain = this.#now();
    }
  }

  /** Stops the loop and draws the board a last time. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    this.draw(true);
  }
}
