/**
 * An isolate's log lines under a dependency's failure, a few of each kind in each 10 s
 * window; the rest are counted and the count said at the window's end. A hosted function
 * keeps 100 log events in 10 s and drops the rest, the first cause among them
 * (https://supabase.com/docs/guides/functions/limits, "Log event threshold"); a failure of
 * a dependency (DynamoDB down, a key refused, the database away) meets every segment, key
 * or request of every run of the isolate at once, and each would say it.
 *
 * A line's kind is its text with its numbers and quoted values taken out ({@link kindOf}),
 * so that "segment 3/8 … InternalServerError" and "segment 5/8 … InternalServerError" are
 * one kind, and a cause met once (an unexpected error) is never held back behind a flood
 * of another: the first {@link LINES_PER_KIND} lines of each kind are said, up to
 * {@link LINES_PER_WINDOW} in all.
 *
 * @module
 */

import { type Schedule, unrefTimer } from "./request_tally.ts";

/** The window. */
export const LOG_WINDOW_MS = 10_000;

/** Lines of one kind said in a window. */
export const LINES_PER_KIND = 3;

/** Lines said in a window in all: two isolates of a function stay under hosted's 100. */
export const LINES_PER_WINDOW = 40;

/** A line's kind: its text without its numbers and quoted or bracketed values. */
export function kindOf(line: string): string {
  return line.replace(/"(?:[^"\\]|\\.)*"|'[^']*'|\{[^{}]*\}|\[[^\][]*\]|\d+/g, "#");
}

/** Says the first lines of each kind in each window, and counts the rest. */
export class LogWindow {
  #start: number;
  #said = 0;
  #kinds = new Map<string, number>();
  #held = 0;
  #retiring = false;
  #cancelTimer: (() => void) | undefined;

  /**
   * @param log where the lines go unless {@link line} is told otherwise, and the count's
   * @param where where what a held line said can be found, for the count's line
   * @param now a clock in milliseconds (default `performance.now`)
   * @param schedule says the count at the window's end when no line comes after it; by
   *   default an unref'd timer
   */
  constructor(
    private readonly log: (line: string) => void,
    private readonly where: string,
    private readonly now: () => number = () => performance.now(),
    private readonly schedule: Schedule = unrefTimer,
  ) {
    this.#start = now();
  }

  /** Says `text` (to `out`), or counts it when its kind or the window has said its share. */
  line(text: string, out: (line: string) => void = this.log): void {
    if (this.now() - this.#start >= LOG_WINDOW_MS) this.flush();
    const kind = kindOf(text);
    const ofKind = this.#kinds.get(kind) ?? 0;
    if (ofKind < LINES_PER_KIND && this.#said < LINES_PER_WINDOW) {
      this.#kinds.set(kind, ofKind + 1);
      this.#said++;
      out(text);
      return;
    }
    this.#held++;
    if (this.#retiring) return; // said as its request ends (whenRequestEnds)
    this.#cancelTimer ??= this.schedule(() => {
      this.#cancelTimer = undefined;
      this.flush();
    }, Math.max(0, LOG_WINDOW_MS - (this.now() - this.#start)));
  }

  /**
   * The runtime retires the isolate (its `beforeunload`): the count is said now, and from
   * then on as each request ends ({@link whenRequestEnds}), since the isolate ends with
   * its last request, its timers unfired.
   */
  retire(): void {
    this.#retiring = true;
    this.flush();
  }

  /** A request ended: in a retiring isolate, what it held back is said now. */
  whenRequestEnds(): void {
    if (this.#retiring && this.#held > 0) this.flush();
  }

  /** Says how many lines were held back, if any, and starts a new window. */
  flush(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#held > 0) {
      this.log(
        `…and ${this.#held} more line${this.#held === 1 ? "" : "s"} of this isolate in ` +
          `${(LOG_WINDOW_MS / 1000).toFixed(0)} s like those above, not logged one by one ` +
          `(${this.where})`,
      );
    }
    this.#start = this.now();
    this.#said = 0;
    this.#kinds.clear();
    this.#held = 0;
  }
}

/**
 * The first `limit` lines of one run or request, said; the rest counted, for the run's
 * closing line to say how many ({@link unlogged}). For work whose every unit may fail
 * alike (a queue's keys, a bulk edit's rows) and whose closing line says where each
 * unit's cause is kept.
 */
export class FirstLines {
  #lines = 0;

  constructor(private readonly limit: number, private readonly log?: (line: string) => void) {}

  /** Says `text` while under the limit; counts it either way. */
  line(text: string): void {
    if (this.#lines++ < this.limit) this.log?.(text);
  }

  /** How many lines were counted but not said. */
  get unlogged(): number {
    return Math.max(0, this.#lines - this.limit);
  }
}
