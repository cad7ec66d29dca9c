/**
 * The `data-checksum-validator` endpoint (docs/interfaces.md): `POST {"table": "<target
 * table>", "repair": false}` with a service key; answers 200 with the validation. A
 * table too big for one request (the Edge Runtime counts CPU per isolate: retired at
 * 1 s, killed at 2 s; wall clock 150 s) answers 202 with the run's id: the run keeps its
 * checkpoints (its Scan's leased segments, its compare's last key) in the database,
 * its `sync_checksums` row shows progress and, at the end, the result, and it goes on in
 * the next request, which the validator makes itself: `POST {"runId": n}` (or the pg_cron
 * heartbeat, `sync.wake_validations`, when a request was killed); such a request answers
 * 202 at once. The first request waits up to 25 s for the run's record to show the result,
 * looking again only while its isolate's CPU by the meter is within the budget.
 * `"pagesPerRequest"` caps the Scan pages one request reads.
 *
 * A start may carry an `Idempotency-Key` header (1 to 255 printable ASCII characters):
 * sent again with it, as a client does after a 503 or a lost answer, it goes on with (or
 * answers with) the run that key started, rather than start a second run of the table;
 * the key of another table's validation, or of one with another repair flag, is 422.
 *
 * `POST {"rereads": true}` (pg_cron's `sync.wake_rereads`) re-reads the collapsed keys
 * whose held observation was removed (collapsed_rereads.ts) and answers 200 with how many
 * it re-read and how many failed; 202 at once, re-reading nothing, when every place of
 * the isolate is taken (the next sweep comes back). Beside a run, their CPU (a point read
 * and a staged row per key) is counted as it is used, not reserved ahead as a page's is.
 *
 * A run's request that finds the isolate's gate full (run_gate.ts) waits in the isolate
 * for the place, in arrival order, and starts the moment the run before it (or the
 * re-reads) ends or hands on: no run waits for the 10 s heartbeat because its request
 * landed on a busy isolate.
 * Its wall budget counts from its arrival, so a request that waited long hands on at once,
 * and an isolate (which takes no new request after half the wall-clock limit) ends well
 * before the limit; one whose CPU is spent hands each waiting request on at once.
 *
 * @module
 */

import { describeError, withoutQuotes } from "./error_text.ts";
import { validateTable } from "./checksum_validator.ts";
import { type ValidatorDeps, withRequestCpuBudget } from "./validator_deps.ts";
import { inMeterTerms, STATEMENT_CPU_MS } from "./cpu_meter.ts";
import { rereadCollapsedKeys } from "./collapsed_rereads.ts";
import { recordedResult } from "./validator_result.ts";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import { pausedAt, type RunGate, whenAdmitted } from "./run_gate.ts";
import { internalCaller } from "./service_auth.ts";
import {
  isCutOver,
  isDatabaseUnavailable,
  isTransientFailure,
  validationUnderWay,
} from "./db_errors.ts";
import { readOnlyRefusal } from "./read_only_answer.ts";
import { byTargetTable, TABLES } from "./table_registry.ts";
import { readValidatorRequest } from "./validator_request.ts";

/** What the endpoint needs besides the validator's own dependencies. */
export interface EndpointDeps extends ValidatorDeps {
  /** The service keys callers may present (service_auth.ts, acceptedServiceKeys). */
  serviceRoleKey: string | readonly string[] | undefined;
  /** Keeps background work alive after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  /** Calls this endpoint again (another request, with a budget of its own). */
  callSelf: (body: unknown) => Promise<void>;
  /**
   * The runs one isolate works on at once (run_gate.ts). Beyond them, a run's own request
   * answers 202 and waits for a place (see above), and a new validation is started and
   * handed on at once. None: no limit.
   */
  gate?: RunGate;
  /** How long a request waits for the result before answering 202. */
  answerWithinMs?: number;
  /** How often a request that handed on looks at its run's record for the answer (250 ms). */
  pollMs?: number;
}

/** Handles one request. */
export async function handleValidatorRequest(req: Request, deps: EndpointDeps): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const caller = internalCaller(req, deps.serviceRoleKey);
  if ("problem" in caller) return errorResponse(401, caller.problem);
  const request = await readValidatorRequest(req, caller.caller);
  if (request instanceof Response) return request;
  const { body, requestKey } = request;
  // The run this request started or goes on with, once known, and its table: a failure
  // after that is the run's to recover from (the heartbeat resumes it), not the caller's.
  let started: { runId: number; table: string } | undefined;
  let table: string | undefined;
  try {
    if ("rereads" in body) {
      // The collapsed keys waiting for a re-read (collapsed_rereads.ts), through the gate
      // like any run of this isolate (their CPU adds up with the runs'). An isolate whose
      // places are all taken defers them rather than queue a request behind it: pg_cron's
      // sweep comes back in 10 s while keys wait, and requests would pile up meanwhile.
      // With the request's own CPU budget, as a run's (the floor, and the meter's lead:
      // cpu_meter.ts): without it an isolate its estimate put past the budget re-read
      // nothing until the runtime retired it.
      const reread = () =>
        rereadCollapsedKeys(withRequestCpuBudget({
          ...deps,
          budget: { cpuMs: Infinity, wallMs: Infinity, ...deps.budget },
        }));
      const admitted = deps.gate ? deps.gate.admit(reread) : reread();
      if (admitted === undefined) {
        return json(202, { reread: 0, failed: 0, deferred: "the isolate is busy" });
      }
      return json(200, await admitted);
    }
    let runId: number | undefined;
    if ("runId" in body) {
      const [run] = await deps.sql<{ target_table: string; status: string }[]>`
        select target_table, status from public.sync_checksums where id = ${body.runId}`;
      if (!run) return errorResponse(404, `validation run ${body.runId} does not exist`);
      if (run.status === "done" || run.status === "failed") {
        // Another request (a hand-on, or pg_cron's heartbeat for the same run) finished
        // it first: nothing is left to do, and nothing went wrong here.
        return json(200, { table: run.target_table, runId: body.runId, status: run.status });
      }
      if (run.status !== "running") {
        return errorResponse(409, `validation run ${body.runId} is ${run.status}, not running`);
      }
      table = run.target_table;
      runId = body.runId;
    } else {
      table = body.table;
    }
    const spec = byTargetTable(table);
    if (!spec) {
      return errorResponse(
        400,
        `${table} is not a target table; known: ${TABLES.map((t) => t.targetTable).join(", ")}`,
      );
    }
    const pages = body.pagesPerRequest;
    const arrivedAt = performance.now();
    const full = deps.gate !== undefined && deps.gate.active >= deps.gate.max;
    if (runId !== undefined) started = { runId, table: spec.targetTable };
    const start = (pause?: (ms: number) => Promise<void>) =>
      validateTable(
        {
          ...deps,
          pause,
          // A busy isolate only starts a new run: no budget, so it hands on at once. A
          // run's request waits for a place instead (below), and then has its budget.
          budget: full && runId === undefined
            ? { cpuMs: 0, wallMs: 0, pages: 0 }
            : { cpuMs: Infinity, wallMs: Infinity, ...deps.budget, pages },
        },
        spec,
        {
          repair: "repair" in body ? body.repair : undefined,
          runId,
          requestKey: runId === undefined ? requestKey : undefined,
          onRun: (id) => (started = { runId: id, table: spec.targetTable }),
          startedAt: arrivedAt,
        },
      );
    // The gate's place is given back before the hand-on's call, which may land on this
    // very isolate; a run admitted through the gate also gives it up while it waits on a
    // timer (pausedAt).
    const gate = deps.gate;
    const admitted = gate === undefined || (full && runId === undefined)
      ? start()
      : whenAdmitted(gate, () => start((ms) => pausedAt(gate, ms, deps.pacing?.sleep)));
    const work = admitted
      .then(async (outcome) => {
        // Handed on: the next request goes on from the checkpoints. Otherwise another
        // request holds the run's work (or the heartbeat, sync.wake_validations, resumes it).
        if ("continued" in outcome && outcome.handOn) {
          await deps.callSelf({ runId: outcome.runId, pagesPerRequest: pages });
        }
        return outcome;
      });
    if (runId !== undefined) {
      // A request the validator (or pg_cron) makes to go on with a run: nobody waits for
      // its answer, and a self-call waits for the headers, so it answers at once.
      deps.waitUntil(
        work.catch((error) =>
          console.error(`validation of ${spec.targetTable} failed: ${describeError(error)}`)
        ),
      );
      return json(202, { table: spec.targetTable, runId, status: "running" });
    }
    const deadline = performance.now() + (deps.answerWithinMs ?? 25_000);
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const timer = new Promise<"waiting">((resolve) => {
      timeout = setTimeout(() => resolve("waiting"), deps.answerWithinMs ?? 25_000);
    });
    const first = await Promise.race([work, timer]);
    clearTimeout(timeout);
    if (first !== "waiting" && !("continued" in first)) return json(200, first);
    deps.waitUntil(
      work.catch((error) =>
        console.error(`validation of ${spec.targetTable} failed: ${describeError(error)}`)
      ),
    );
    // Another request (one it woke, or the next it handed on to) may finish the run
    // within the time left (or has: a start sent again for a run that ended): the answer
    // is then the run's record. It looks once, then again only while its isolate's CPU by
    // the meter is within the budget, each look charged: in an isolate past its budget
    // (its work handed on for it, say) it answers 202 after that one look. Its looks had
    // run on for 22 s in an isolate the runtime had retired, unseen by the estimate, until
    // the hard limit killed it, and the caller got 546 instead of the run's id (`npm run
    // bench`).
    const withinBudget = () =>
      deps.cpu === undefined || deps.budget === undefined ||
      deps.cpu.usedMs() < inMeterTerms(deps.cpu, deps.budget.cpuMs);
    let looks = 0;
    while (
      first !== "waiting" && started !== undefined &&
      (looks === 0 || (performance.now() < deadline && withinBudget()))
    ) {
      looks++;
      const recorded = await recordedResult(deps, spec, started.runId);
      deps.cpu?.charge(STATEMENT_CPU_MS);
      if (recorded !== "running") {
        if ("failed" in recorded) {
          return errorResponse(
            500,
            `validation run ${started.runId} of ${spec.targetTable} failed: ${recorded.failed}`,
          );
        }
        return json(200, recorded);
      }
      await new Promise((resolve) => setTimeout(resolve, deps.pollMs ?? 250));
    }
    return json(202, { table: spec.targetTable, runId: started?.runId, status: "running" });
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      if (started === undefined) {
        // The run may have been made (its answer lost with the connection): the same
        // Idempotency-Key finds it again.
        return errorResponse(
          503,
          "the database is unavailable; retry later, with the same Idempotency-Key " +
            "(a run this request may have started is then the one followed)",
          { "retry-after": "5" },
        );
      }
      // The run exists and stays running: pg_cron's heartbeat (sync.wake_validations)
      // resumes it once the database answers again. Its id, not a 503, so that a caller
      // follows it rather than start another run of the table.
      console.error(
        `validation run ${started.runId} of ${started.table}: ${
          (error as Error).message
        }; the heartbeat resumes it`,
      );
      return json(202, { table: started.table, runId: started.runId, status: "running" });
    }
    // The key of another validation (sync.start_validation, 22023): 422, as the IETF's
    // Idempotency-Key draft answers a key reused for another request.
    if (
      started === undefined && requestKey !== undefined &&
      (error as { code?: string }).code === "22023" &&
      (error as Error).message.startsWith("Idempotency-Key")
    ) {
      return errorResponse(422, (error as Error).message);
    }
    // A table with a run queued or running gets no second (sync.start_validation, SY006):
    // 409 with that run's id, which the caller follows as any run it started.
    const underWay = started === undefined ? validationUnderWay(error) : undefined;
    if (underWay !== undefined) {
      return json(409, { error: (error as Error).message, ...underWay });
    }
    // A repair asked for after the cutover (sync.start_validation, SY005): no retry passes.
    if (isCutOver(error)) {
      return errorResponse(409, (error as Error).message);
    }
    // The database read-only (a nearly full disk): said at once, not retried in silence.
    const readOnly = readOnlyRefusal(error, "the validator", "retry later");
    if (readOnly) return readOnly;
    // A run not yet started whose statement timed out or lost to another: the same
    // request passes later.
    if (started === undefined && isTransientFailure(error)) {
      return errorResponse(
        503,
        `the validator could not start now (${(error as { code?: string }).code}); retry later`,
        { "retry-after": "5" },
      );
    }
    // Named by its table (and run, once it has one), as every other answer is.
    const what = started
      ? `validation run ${started.runId} of ${started.table}`
      : "rereads" in body
      ? "the collapsed keys' re-reads"
      : "runId" in body
      ? `validation run ${body.runId}${table ? ` of ${table}` : ""}`
      : `validation of ${table ?? body.table}`;
    console.error(`${what} failed: ${describeError(error)}`);
    // Without the values it may quote: pg_cron's calls keep the answer in
    // net._http_response, which every database role may read.
    return errorResponse(500, `${what} failed: ${withoutQuotes((error as Error).message)}`);
  }
}
