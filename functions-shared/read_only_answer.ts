/**
 * Every function's answer to a write refused because the database is read-only (SQLSTATE
 * 25006, db_errors.ts `isReadOnly`): Supabase makes a project's database read-only when its
 * disk is nearly full (https://supabase.com/docs/guides/platform/database-size). Nothing
 * is wrong with the request, and it passes once an operator has acted, so it is a 503
 * saying what to do, a minute apart, never a 500 (which the Lambda takes for the body's
 * fault) nor a 503 a caller would retry every few seconds for minutes in silence.
 *
 * @module
 */

import { describeError } from "./error_text.ts";
import { errorResponse } from "./http.ts";
import { isReadOnly } from "./db_errors.ts";

/** What a read-only answer and its log line say first. */
export const READ_ONLY_CAUSE =
  "the database is read-only (25006; Supabase makes a project's database read-only when " +
  "its disk is nearly full: grow the disk or free space, then leave read-only mode)";

/** The marker of the answer, for callers that stop rather than wait (`x-sync-refusal`). */
export const READ_ONLY_REFUSAL = "read-only";

/**
 * When `error` is the database's read-only mode: logs it (the cause, then `what` met it
 * and the error) and answers 503 naming the cause and the fix, then `outcome` (what was done, and
 * what to do). Otherwise undefined, for the caller's other answers.
 */
export function readOnlyRefusal(
  error: unknown,
  what: string,
  outcome: string,
  log: (line: string) => void = console.error,
): Response | undefined {
  if (!isReadOnly(error)) return undefined;
  log(`${READ_ONLY_CAUSE}: ${what}: ${describeError(error)}`);
  return errorResponse(503, `${READ_ONLY_CAUSE}; ${outcome}`, {
    "retry-after": "60",
    "x-sync-refusal": READ_ONLY_REFUSAL,
  });
}
