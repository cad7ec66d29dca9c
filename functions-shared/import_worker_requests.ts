/**
 * The import-worker's requests (docs/interfaces.md, "import-worker"): a `POST` with the
 * service role key starts a run of the backfill worker in the background and answers 202
 * at once; a busy isolate (its run gate full, run_gate.ts) takes no more and says so. A run
 * that stops for its budget hands on (a call of the function to itself) only once it has
 * given back its place: a request that came back to this isolate meanwhile would find the
 * gate full and be turned away, and nothing would go on until pg_cron's next tick. A run's
 * failure is handled here: an unhandled rejection would end the isolate, and with it its
 * other runs mid-page (the runtime's `waitUntil` only registers the promise).
 *
 * @module
 */

import type { RunResult } from "./backfill_worker.ts";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import type { RunGate } from "./run_gate.ts";
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
  /**
   * The lanes of a run (IMPORT_WORKER_SEGMENTS_PER_RUN; 1 when absent): a run of one lane
   * stopped by its budget logged its totals on its segment's line (segment_scan.ts).
   */
  lanesPerRun?: number;
  /** Calls the function again (self_invoke.ts: never throws). */
  callSelf: () => Promise<void>;
  /** Keeps the background work alive after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  log: (line: string) => void;
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
        // A run of one lane stopped by its budget said so with its totals, naming its
        // segment (segment_scan.ts, totalsOnHandOn); one that found nothing to do says
        // nothing. An isolate's eight runs hand on together, and a hosted function keeps
        // 100 log events in 10 s (https://supabase.com/docs/guides/functions/limits).
        (r) => {
          if ((r.stoppedBy === "budget" && (deps.lanesPerRun ?? 1) === 1) || r.pages === 0) return;
          deps.log(
            `${worker}: ${r.pages} pages, ${r.items} items, ${r.rows} rows, stopped by ${r.stoppedBy}`,
          );
        },
        // The segment was given back and its cause logged, naming it (segment_scan.ts).
        (error) => deps.logError(`${worker}: stopped by an error: ${(error as Error).message}`),
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
