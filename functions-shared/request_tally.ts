/**
 * An isolate's routine requests, said in one line every 10 s instead of a line each. A
 * hosted function keeps 100 log events in 10 s and drops the rest, errors among them
 * (https://supabase.com/docs/guides/functions/limits, "Log event threshold"): the
 * import-worker's requests, a claim and a hand-on each, passed that in every backfill of
 * `npm start` (175 lines past it in one run; 67 lines in all, none past it, since). Errors and the unusual (a segment taken over, a job
 * failed) are still logged at once, by the code that meets them; the progress of every
 * segment is in `sync.backfill_progress`.
 *
 * @module
 */

import type { ScanResult } from "./segment_work.ts";

/** How often an isolate says what its requests did. */
export const TALLY_EVERY_MS = 10_000;

/** Runs `task` in `ms`; answers how to cancel it. */
export type Schedule = (task: () => void, ms: number) => () => void;

/**
 * A timer that does not keep the isolate alive: one whose isolate ends first says nothing
 * (`beforeunload` said it, when the runtime retired the isolate).
 */
export const unrefTimer: Schedule = (task, ms) => {
  const id = setTimeout(task, ms);
  Deno.unrefTimer(id);
  return () => clearTimeout(id);
};

/** Counts an isolate's requests and says them once per {@link TALLY_EVERY_MS}. */
export class RequestTally {
  #since: number;
  #requests = 0;
  #budget = 0;
  #throttled = 0;
  #noWork = 0;
  #failed = 0;
  #pages = 0;
  #items = 0;
  #rows = 0;
  #resumed = 0;
  #lastHandOn: string | undefined;
  #retiring = false;
  #cancelTimer: (() => void) | undefined;

  /**
   * @param name the function, first on the line
   * @param log where the line goes
   * @param now a clock in milliseconds (default `performance.now`)
   * @param schedule runs the window's line at its end when no request ends after it (the
   *   last requests of a burst); by default an unref'd timer
   */
  constructor(
    private readonly name: string,
    private readonly log: (line: string) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly schedule: Schedule = unrefTimer,
  ) {
    this.#since = now();
  }

  /** A request that ended with `result`, or failed (its error is logged by the caller). */
  add(result: ScanResult | "failed"): void {
    this.#requests++;
    if (result === "failed") {
      this.#failed++;
    } else {
      if (result.stoppedBy === "budget") this.#budget++;
      else if (result.stoppedBy === "throttled") this.#throttled++;
      else this.#noWork++;
      this.#pages += result.pages;
      this.#items += result.items;
      this.#rows += result.rows;
      this.#resumed += result.resumed;
      this.#lastHandOn = result.handedOn ?? this.#lastHandOn;
    }
    const elapsed = this.now() - this.#since;
    if (this.#retiring || elapsed >= TALLY_EVERY_MS) {
      this.flush();
    } else {
      this.#cancelTimer ??= this.schedule(() => {
        this.#cancelTimer = undefined;
        this.flush();
      }, TALLY_EVERY_MS - elapsed);
    }
  }

  /**
   * The runtime retires the isolate (its `beforeunload`): what was counted is said now,
   * and each request still running is said as it ends (the isolate takes no new ones and
   * ends with its last), so that none goes unsaid.
   */
  retire(): void {
    this.#retiring = true;
    this.flush();
  }

  /** Says what was counted, if anything, and starts counting again. */
  flush(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const now = this.now();
    if (this.#requests > 0) {
      const ends = [
        [this.#budget, "stopped by their budget"],
        [this.#noWork, "with no work left"],
        [this.#throttled, "throttled"],
        [this.#failed, "failed"],
      ].filter(([n]) => n as number > 0).map(([n, what]) => `${n} ${what}`);
      const lastHandOn = this.#lastHandOn ? `; the last handed on: ${this.#lastHandOn}` : "";
      this.log(
        `${this.name}: this isolate's last ${((now - this.#since) / 1000).toFixed(1)} s: ${
          plural(this.#requests, "request")
        } (${ends.join(", ")}), ${plural(this.#pages, "page")}, ${plural(this.#items, "item")}, ${
          plural(this.#rows, "row")
        }, ${plural(this.#resumed, "segment")} resumed from a checkpoint${lastHandOn}`,
      );
    }
    this.#since = now;
    this.#requests =
      this.#budget =
      this.#throttled =
      this.#noWork =
      this.#failed =
        0;
    this.#pages =
      this.#items =
      this.#rows =
      this.#resumed =
        0;
    this.#lastHandOn = undefined;
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
