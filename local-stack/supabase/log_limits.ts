/**
 * What the hosted platform keeps of a function's log, for the local gateway's functions
 * log (isolate_process.ts). Supabase's limits page: "Maximum log message length: 10,000
 * characters" and "Log event threshold: 100 events per 10 seconds"; its logging guide:
 * "A function can log up to 100 events within a 10 second period"
 * (https://supabase.com/docs/guides/functions/limits).
 *
 * Locally every line stays in `.local/logs/functions.log`, so that a test or an operator
 * can still read it, but a line hosted would not keep is marked so: past a function's 100
 * events in a window it carries {@link OVER_LOG_LIMIT} (after the time and the isolate's
 * name), and a line longer than 10,000 characters is cut there and says so. A line of output is one event here; a
 * message of several lines (a stack trace) is one event on hosted, so the local count is
 * the stricter.
 *
 * @module
 */

import { FixedWindows } from "./fixed_windows.ts";

/** Log events hosted keeps of one function in a window. */
export const LOG_EVENTS_PER_WINDOW = 100;
/** The window. */
export const LOG_WINDOW_MS = 10_000;
/** The longest message hosted keeps. */
export const LOG_MESSAGE_MAX_CHARS = 10_000;
/** Marks a line that hosted would have dropped. */
export const OVER_LOG_LIMIT = "[over hosted's log limit: dropped there] ";

/** Marks the functions' log lines as the hosted log would keep them. */
export class LogLimits {
  #windows: FixedWindows;

  constructor(now: () => number = Date.now) {
    this.#windows = new FixedWindows(LOG_EVENTS_PER_WINDOW, LOG_WINDOW_MS, now);
  }

  /** `line`, printed by a function named `fn`, as the functions' log is to show it. */
  mark(fn: string, line: string): string {
    const kept = line.length > LOG_MESSAGE_MAX_CHARS
      ? `${
        line.slice(0, LOG_MESSAGE_MAX_CHARS)
      } [cut at hosted's ${LOG_MESSAGE_MAX_CHARS} characters]`
      : line;
    return this.#windows.take(fn).allowed ? kept : `${OVER_LOG_LIMIT}${kept}`;
  }
}

/**
 * What hosted would have dropped of a functions log's `text` (the lines marked
 * {@link OVER_LOG_LIMIT}), for a check that none was: the first five, then how many more.
 * A line dropped there may be the error an operator needs, so `npm test` and `npm start`
 * fail on one, as they fail on an isolate killed at a limit.
 */
export function droppedLines(text: string): string[] {
  const dropped = text.split("\n").filter((line) => line.includes(`] ${OVER_LOG_LIMIT}`));
  const shown = dropped.slice(0, 5).map((line) => line.slice(0, 300));
  return dropped.length > 5 ? [...shown, `...and ${dropped.length - 5} more`] : shown;
}
