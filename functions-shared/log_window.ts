/**
 * An isolate's lines of its problems, at most a few in each 10 s window; the rest are
 * counted and the count said at the window's end. A hosted function keeps 100 log events
 * in 10 s and drops the rest, the first cause among them
 * (https://supabase.com/docs/guides/functions/limits, "Log event threshold"); a failure of
 * a dependency (DynamoDB down, a key refused) meets every segment, key or request of every
 * run of the isolate at once, and each would say it. What each line said is kept where
 * the line says (a segment's cause in `sync.backfill_segments.error`, say), so a line
 * left out loses nothing but its repetition.
 *
 * @module
 */

import { type Schedule, unrefTimer } from "./request_tally.ts";

/** The window. */
export const LOG_WINDOW_MS = 10_000;

/** Lines an isolate says in a window, by default: a fifth of what hosted keeps of a function. */
export const LINES_PER_WINDOW = 20;

/** Says the first {@link LINES_PER_WINDOW} lines of each window, and counts the rest. */
export class LogWindow {
  #start: number;
  #said = 0;
  #held = 0;
  #cancelTimer: (() => void) | undefined;

  /**
   * @param log where the lines go
   * @param where where what a held line said is kept, for the count's line
   * @param perWindow lines said in a window
   * @param now a clock in milliseconds (default `performance.now`)
   * @param schedule says the count at the window's end when no line comes after it; by
   *   default an unref'd timer
   */
  constructor(
    private readonly log: (line: string) => void,
    private readonly where: string,
    private readonly perWindow = LINES_PER_WINDOW,
    private readonly now: () => number = () => performance.now(),
    private readonly schedule: Schedule = unrefTimer,
  ) {
    this.#start = now();
  }

  /** Says `text`, or counts it when the window has said its share. */
  line(text: string): void {
    if (this.now() - this.#start >= LOG_WINDOW_MS) this.flush();
    if (this.#said < this.perWindow) {
      this.#said++;
      this.log(text);
      return;
    }
    this.#held++;
    this.#cancelTimer ??= this.schedule(() => {
      this.#cancelTimer = undefined;
      this.flush();
    }, Math.max(0, LOG_WINDOW_MS - (this.now() - this.#start)));
  }

  /** Says how many lines were held back, if any, and starts a new window. */
  flush(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#held > 0) {
      this.log(
        `…and ${this.#held} more line${this.#held === 1 ? "" : "s"} of this isolate in ` +
          `${(LOG_WINDOW_MS / 1000).toFixed(0)} s, not logged one by one (${this.where})`,
      );
    }
    this.#start = this.now();
    this.#said = 0;
    this.#held = 0;
  }
}
