/**
 * The import-worker's requests (docs/interfaces.md, "import-worker"): a `POST` with the
 * service role key starts a run of the backfill worker in the background and answers 202
 * at once; a busy isolate (its run gate full, run_gate.ts) takes no more and says so. A run
 * that stops for its budget hands on (a call of the function to itself) only once it has
 * given back its place: a request that came back to this isolate meanwhile would find the
 * gate full and be turned away, and nothing would go on until pg_cron's next tick. A run's
 * failure is handled here: an unhandled rejection would end the isolate, and with it its
 * other runs mid-page (the runtime's `waitUntil` only registers the promise). What the runs
 * did is counted and said once every 10 s (request_tally.ts); a failure is logged at once.
 *
 * @module
 */

import { describeError } from "./error_text.ts";
import type { RunResult } from "./backfill_worker.ts";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import type { RunGate } from "./run_gate.ts";
import type { RequestTally } from "./request_tally.ts";
import { internalCaller } from "./service_auth.ts";

/** What the requests need; `index.ts` builds it once per isolate. */
export interface ImportWorkerDeps {
  /** The keys a caller may authenticate with (service_auth.ts). */
  serviceKeys: string[];
  /** The isolate's places for runs. */
  gate: RunGate;
  /**
   * Runs the worker as `worker`; `handOn` is its hand-on once it stopped for its budget
   * (backfill_worker.ts, WorkerDeps.handOn).
   */
  run: (worker: string, handOn: () => Promise<void>) => Promise<RunResult>;
  /** Calls the function again (self_invoke.ts: never throws). */
  callSelf: () => Promise<void>;
  /** Keeps the background work alive after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  /** The isolate's count of what its runs did (one per isolate). */
  tally: Pick<RequestTally, "add">;
  logError: (line: string) => void;
  /** A new run's id (default: a random UUID). */
  newWorker?: () => string;
}

/** The import-worker's request handler. */
export function importWorkerHandler(deps: ImportWorkerDeps): (req: Request) => Response {
  return (req) => {
    if (req.method !== "POST") return methodNotAllowed("POST");
    // pg_cron wakes it with a wake key (service_auth.ts): nothing here asks for more.
    const caller = internalCaller(req, deps.serviceKeys);
    if ("problem" in caller) return errorResponse(401, caller.problem);
    const worker = deps.newWorker?.() ?? `import-worker-${crypto.randomUUID()}`;
    let handOn = false;
    const run = deps.gate.admit(() =>
      deps.run(worker, () => {
        handOn = true;
        return Promise.resolve();
      }).then(
        (result) => deps.tally.add(result),
        // The segment was given back and its cause logged, naming it (segment_scan.ts).
        (error) => {
          deps.tally.add("failed");
          deps.logError(`${worker}: stopped by an error: ${describeError(error)}`);
        },
      )
    );
    if (!run) {
      // The runs already here go on; a busy isolate takes no more (run_gate.ts).
      return json(202, {
        accepted: false,
        reason: `this isolate already runs ${deps.gate.active}`,
      });
    }
    // The run's place is free by now: a request that comes back to this isolate finds room.
    deps.waitUntil(run.then(() => handOn ? deps.callSelf() : undefined));
    return json(202, { accepted: true, worker });
  };
}
