/**
 * Asks the `data-checksum-validator` function to validate a table and waits for its
 * verdict, as a client of its contract should (docs/interfaces.md,
 * "data-checksum-validator"): `npm start`'s report and the end-to-end tests ask through
 * it.
 *
 * - 200: the result.
 * - 202: the run goes on in the background (a table too big for one request, or an
 *   isolate busy with another run); its result is its record's once it ends, read as
 *   the endpoint reads it (functions-shared/validator_result.ts).
 * - 409 with a `runId`: the table's run already under way, waited for as a 202's run,
 *   then asked again (its Scan may have read the table before what is to be checked).
 * - 503: the database was unavailable to the function (e.g. the transaction pooler
 *   refusing logins for a while after Postgres restarted); asked again after its
 *   `Retry-After`, until the wait is over.
 * - Anything else, a failed run, a request that hangs, or a wait that ran out: an error
 *   naming the table, and the status and answer or the run. A run's record that cannot be
 *   read for a moment (the database restarting) is read again.
 *
 * @module
 */

import type postgres from "postgres";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { isDatabaseUnavailable } from "../functions-shared/db_errors.ts";
import { READ_ONLY_REFUSAL } from "../functions-shared/read_only_answer.ts";
import { recordedResult, type ValidationResult } from "../functions-shared/validator_result.ts";

/** Where the function is, and how to read a run's record. */
export interface ValidationClient {
  /** The functions' base URL (`.../functions/v1`). */
  functionsUrl: string;
  serviceRoleKey: string;
  sql: postgres.Sql;
  /** How long to wait for a verdict, 503s and background runs included (15 minutes). */
  waitMs?: number;
  fetch?: typeof fetch;
  /** The run's record (recordedResult's answer); tests replace it. */
  recorded?: (
    spec: TableSpec,
    run: number,
  ) => Promise<ValidationResult | "running" | { failed: string }>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** How long a verdict is waited for by default. */
const DEFAULT_WAIT_MS = 15 * 60_000;

/** How often a background run's record is read. */
const POLL_MS = 250;

/** Validates `spec`'s table (and repairs it when asked); its result, or an error. */
export async function validateThroughFunction(
  client: ValidationClient,
  spec: TableSpec,
  repair = false,
): Promise<ValidationResult> {
  const send = client.fetch ?? fetch;
  const sleep = client.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const now = client.now ?? Date.now;
  const recorded = client.recorded ??
    ((s: TableSpec, run: number) => recordedResult({ sql: client.sql }, s, run));
  const waitMs = client.waitMs ?? DEFAULT_WAIT_MS;
  const deadline = now() + waitMs;
  const table = spec.targetTable;
  const waited = `after ${Math.round(waitMs / 1000)} s`;
  // One key for every attempt: a start whose answer was lost (a 503 after the run was
  // made) is then the run it made, not a second one.
  const requestKey = crypto.randomUUID();
  asking: for (;;) {
    let response: Response;
    let text: string;
    try {
      response = await send(`${client.functionsUrl}/data-checksum-validator`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${client.serviceRoleKey}`,
          "content-type": "application/json",
          // A trace of its own: the run's hand-ons, which carry it on, are one chain with a
          // budget of its own of calls between functions (docs/interfaces.md), whether or
          // not the platform's gateway starts a trace for a request without one.
          traceparent: `00-${hex(32)}-${hex(16)}-01`,
          "idempotency-key": requestKey,
        },
        body: JSON.stringify({ table, repair }),
        // The function answers within 25 s (a 202 past it); a request that hangs past the
        // wait is given up.
        signal: AbortSignal.timeout(Math.max(1, deadline - now())),
      });
      text = await response.text();
    } catch (error) {
      throw new Error(
        `validating ${table}: the function did not answer: ${(error as Error).message}`,
      );
    }
    const refusal = response.headers.get("x-sync-refusal");
    if (
      response.status === 503 && (refusal === "schema-mismatch" || refusal === READ_ONLY_REFUSAL)
    ) {
      // Not the database away for a moment: waiting will not mend it (schema_guard.ts,
      // read_only_answer.ts).
      throw new Error(`validating ${table}: 503: ${text}`);
    }
    if (response.status === 503) {
      const pause = Math.max(1, Number(response.headers.get("retry-after")) || 5) * 1000;
      if (now() + pause > deadline) {
        throw new Error(`validating ${table}: still 503 ${waited}: ${text}`);
      }
      await sleep(pause);
      continue;
    }
    let answer: Record<string, unknown>;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new Error(`validating ${table}: ${response.status} ${text.slice(0, 300)}`);
    }
    if (response.status === 200) return answer as unknown as ValidationResult;
    // A run of the table already under way (pg_cron's daily one, say): waited for, then
    // asked for again, since its Scan may have read the table before what the caller
    // wants checked (and may make no repair).
    const underWay = response.status === 409 && answer.runId !== undefined;
    if (response.status !== 202 && !underWay) {
      throw new Error(`validating ${table}: ${response.status} ${text.slice(0, 300)}`);
    }
    const run = Number(answer.runId);
    if (!Number.isInteger(run) || run <= 0) {
      // The function answers 202 before its run exists only when starting it took longer
      // than its 25 s: there is no run to follow.
      throw new Error(`validating ${table}: 202 without a run to follow: ${text.slice(0, 300)}`);
    }
    for (;;) {
      let result: Awaited<ReturnType<typeof recorded>>;
      try {
        result = await recorded(spec, run);
      } catch (error) {
        // The database may be away a moment (a restart): read again until the wait is over.
        if (!isDatabaseUnavailable(error) || now() > deadline) {
          throw new Error(`validating ${table}: reading run ${run}: ${(error as Error).message}`);
        }
        await sleep(POLL_MS * 4);
        continue;
      }
      if (result !== "running") {
        if (underWay) {
          if (now() > deadline) {
            throw new Error(
              `validating ${table}: run ${run} of the table was in the way until past the wait (${waited})`,
            );
          }
          continue asking;
        }
        if ("failed" in result) {
          throw new Error(`validating ${table}: run ${run} failed: ${result.failed}`);
        }
        return result;
      }
      if (now() > deadline) {
        throw new Error(
          `validating ${table}: run ${run} is still running ${waited} ` +
            "(see public.sync_checksums and sync.status)",
        );
      }
      await sleep(POLL_MS);
    }
  }
}

/** `chars` random hexadecimal digits (of a random UUID: never all zeros). */
function hex(chars: number): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, chars);
}
