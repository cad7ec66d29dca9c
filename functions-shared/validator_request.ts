/**
 * What a request of the `data-checksum-validator` endpoint asks (validator_endpoint.ts
 * answers it): its body, in one of three forms (a new run, a run going on, the collapsed
 * keys' re-reads), and a start's `Idempotency-Key`. A body of no form, a key that is not
 * 1 to 255 printable ASCII characters, or a wake key (pg_cron's) that asks for more than
 * to go on with what the database queued, is refused with the answer that says why.
 *
 * @module
 */

import { errorResponse } from "./http.ts";
import type { CallerKind } from "./service_auth.ts";
import {
  described,
  exactly,
  isObject,
  nonEmptyText,
  positiveInteger,
  problemText,
  strictObject,
  trueOrFalse,
} from "./json_shape.ts";

/** The three forms of a request's body: a new run, a run going on, the re-reads. */
export type Body =
  | { table: string; repair?: boolean; pagesPerRequest?: number }
  | { runId: number; pagesPerRequest?: number }
  | { rereads: true };

const BODY_FORMS = {
  table: strictObject({
    table: { check: nonEmptyText },
    repair: { check: trueOrFalse, optional: true },
    pagesPerRequest: { check: positiveInteger, optional: true },
  }),
  runId: strictObject({
    runId: { check: positiveInteger },
    pagesPerRequest: { check: positiveInteger, optional: true },
  }),
  rereads: strictObject({ rereads: { check: exactly(true) } }),
};

/**
 * The body, if it has one of the three forms (told apart by their first key); else what
 * is wrong with it, and where.
 */
function parseBody(json: unknown): Body | string {
  if (!isObject(json)) {
    return problemText({ path: [], message: `expected an object, not ${described(json)}` });
  }
  const form = "rereads" in json ? "rereads" : "runId" in json ? "runId" : "table";
  const problem = BODY_FORMS[form](json, []);
  return problem === undefined ? json as Body : problemText(problem);
}

/** An Idempotency-Key the endpoint takes (sync_checksums.request_key's check). */
const IDEMPOTENCY_KEY = /^[!-~]{1,255}$/;

/** A request the endpoint takes: its body, and a start's Idempotency-Key. */
export interface ValidatorRequest {
  body: Body;
  requestKey?: string;
}

/**
 * Reads `req` from a caller already authenticated (service_auth.ts) as `caller`: the request, or the
 * answer (400, 403) that refuses it.
 */
export async function readValidatorRequest(
  req: Request,
  caller: CallerKind,
): Promise<ValidatorRequest | Response> {
  let body: Body;
  try {
    const parsed = parseBody(JSON.parse(await req.text()));
    if (typeof parsed === "string") {
      return errorResponse(
        400,
        `malformed body at ${parsed}: send {"table": "<target table>", "repair": false}`,
      );
    }
    body = parsed;
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  // A start sent again with its Idempotency-Key (its answer lost) is the run it started.
  const requestKey = req.headers.get("idempotency-key") ?? undefined;
  if (requestKey !== undefined && !IDEMPOTENCY_KEY.test(requestKey)) {
    return errorResponse(
      400,
      "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces (a UUID, say)",
    );
  }
  // pg_cron's wake key (service_auth.ts) goes on with what the database queued, no more.
  if (caller === "wake" && !("runId" in body) && !("rereads" in body)) {
    return errorResponse(
      403,
      'a wake key (pg_cron\'s) may only go on with a run ({"runId": N}) or the re-reads ({"rereads": true}); start a validation with a service key',
    );
  }
  return { body, requestKey };
}
