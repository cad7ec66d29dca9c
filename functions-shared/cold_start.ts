/**
 * A function's cold start: its settings read and its clients made once per isolate. A
 * setting that is missing or malformed (SYNC_DB_URL, the service keys, an AWS key with a
 * line break in it) is no reason to fail the isolate's boot, which answers every caller
 * with the platform's bare boot error and leaves the cause in the function's log alone:
 * every request is answered 503 instead, `x-sync-refusal: misconfigured`, naming the
 * setting and the cause (never a secret: functions-shared/settings.ts names a secret
 * setting without its value), so that the Lambda's and pg_net's logs say what to fix.
 * Retry-After 60: the same request passes once the setting is fixed and the function
 * deployed again.
 *
 * @module
 */

import { describeError } from "./error_text.ts";
import { errorResponse } from "./http.ts";

/** A request handler, as `Deno.serve` takes one. */
export type Handler = (req: Request) => Response | Promise<Response>;

/**
 * The handler `build` makes, or, when `build` throws, one that answers every request 503
 * with `name` and the cause (logged once).
 */
export function servedOrRefused(name: string, build: () => Handler): Handler {
  try {
    return build();
  } catch (error) {
    // One line, whatever was thrown (a fault of the code says where).
    const problem = error instanceof Error && !(error instanceof TypeError)
      ? error.message
      : describeError(error);
    console.error(`${name} refuses every request: ${problem}`);
    return () =>
      errorResponse(503, `${name} is misconfigured: ${problem}; nothing was done`, {
        "retry-after": "60",
        "x-sync-refusal": "misconfigured",
      });
  }
}
