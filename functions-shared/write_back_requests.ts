/**
 * The `write-back` function's requests (docs/interfaces.md, "write-back"): a POST with
 * the service role key starts a run (write_back_run.ts) if the isolate has room for one.
 * pg_net's call after an edit and pg_cron's sweep are answered when the run ends, with
 * its report. A run that a budget stopped with write-backs left hands them on to a new
 * request of the function, `{"handOn": true}`, which is answered 202 at once and runs in
 * the background: so the isolate that hands on waits for that answer only, not for the
 * next run, and a bulk edit goes on without waiting for the next sweep.
 *
 * The isolate admits {@link RUNS_PER_ISOLATE} runs at a time (run_gate.ts). A run stops
 * once the isolate's meter has counted `WRITE_BACK_RUN_CPU_MS` (300 by default, at most
 * 450) since it started, its own edits and the other run's alike, each charged twice what
 * it costs. The runtime retires an isolate once its CPU passes the soft limit (1,000 ms);
 * its runs then add about one allowance, plus what a last claim ends past it (at most 10
 * spent write-backs, each a read and a merge) and an edit in flight: some 630 ms at 450,
 * under the 2,000 ms hard limit. A request beyond the two starts nothing: the runs already
 * here go on claiming, and hand on; a hand-on turned away answers 503, so that its caller
 * logs it (pg_cron's sweep then resumes the work).
 *
 * @module
 */

import { errorResponse, json, methodNotAllowed } from "./http.ts";
import type { RunGate } from "./run_gate.ts";
import { internalCaller } from "./service_auth.ts";
import { isDatabaseUnavailable, isTransientFailure } from "./db_errors.ts";
import { readOnlyRefusal } from "./read_only_answer.ts";
import { describeError } from "./error_text.ts";
import { runWriteBacks, type WriteBackDeps, type WriteBackReport } from "./write_back_run.ts";

/** The runs one isolate takes on at once. */
export const RUNS_PER_ISOLATE = 2;

/** The body of a hand-on: a run's successor. */
export const HAND_ON_BODY = { handOn: true } as const;

/** What the handler needs besides a run's own (write_back_run.ts). */
export interface WriteBackRequestDeps extends WriteBackDeps {
  /** The isolate's gate, admitting {@link RUNS_PER_ISOLATE} runs. */
  gate: RunGate;
  /** Keeps work going after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  /** Starts another request of the function with `body` (self_invoke.ts). */
  callSelf: (body: unknown) => Promise<void>;
}

/** Handles a request: POST with a service key. */
export async function handleWriteBackRequest(
  req: Request,
  deps: WriteBackRequestDeps,
): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  // pg_cron wakes it with a wake key (service_auth.ts): nothing here asks for more.
  const caller = internalCaller(req, deps.serviceKeys);
  if ("problem" in caller) return errorResponse(401, caller.problem);
  const handOn = await isHandOn(req);
  // A wake key waits in pg_net's queue, which every database role may read: it starts a
  // run as pg_cron's sweep does, whose answer waits for it; a hand-on takes a service key.
  if (handOn && caller.caller === "wake") {
    return errorResponse(
      403,
      "a wake key (pg_cron's) may only start a run ({}); hand on with a service key",
    );
  }
  const run = deps.gate.admit(() => runWriteBacks(deps));
  if (!run) {
    const reason = `this isolate already runs ${deps.gate.active}; they go on claiming`;
    if (handOn) return errorResponse(503, reason, { "retry-after": "1" });
    return json(200, { accepted: false, reason });
  }
  // The run's place is free by now (admit's promise settles after it gives it back): the
  // successor may land on this isolate and find room.
  const ended = run.then((report) => {
    if (report.more) deps.waitUntil(deps.callSelf(HAND_ON_BODY));
    return report;
  });
  if (handOn) {
    deps.waitUntil(ended.catch((error) => {
      deps.log?.(`write-back: a handed-on run stopped: ${causeOfStop(error)}`);
    }));
    return json(202, { accepted: true });
  }
  let report: WriteBackReport;
  try {
    report = await ended;
  } catch (error) {
    // As the other functions answer: pg_net's call is lost either way, and pg_cron's
    // sweep calls again while write-backs are due.
    if (isDatabaseUnavailable(error)) {
      return errorResponse(503, "the database is unavailable; retry later", { "retry-after": "5" });
    }
    const readOnly = readOnlyRefusal(
      error,
      "write-back",
      "pg_cron's sweep calls again while write-backs are due",
    );
    if (readOnly) return readOnly;
    // A statement that timed out or lost to another: the same run passes later.
    const code = (error as { code?: string }).code;
    if (isTransientFailure(error)) {
      return errorResponse(503, `the write-back could not run now (${code}); retry later`, {
        "retry-after": "5",
      });
    }
    // Named, not a bare 500 (its message may quote an edit's values: the log has it).
    console.error(`write-back failed: ${describeError(error)}`);
    const named = !code ? "" : /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : ` (${code})`;
    return errorResponse(500, `write-back failed${named}; the function's log has the error`);
  }
  return json(200, report);
}

/** Whether the body is a hand-on's; any other (pg_net's `{}`, none) is not. */
async function isHandOn(req: Request): Promise<boolean> {
  const text = await req.text().catch(() => "");
  if (text.length > 100) return false;
  try {
    return (JSON.parse(text) as { handOn?: unknown } | null)?.handOn === true;
  } catch {
    return false;
  }
}

function causeOfStop(error: unknown): string {
  return isDatabaseUnavailable(error)
    ? "the database is unavailable (pg_cron's sweep calls again)"
    : `${(error as Error).name}: ${(error as Error).message}`;
}
