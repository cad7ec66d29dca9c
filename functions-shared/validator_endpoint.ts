/**
 * The `data-checksum-validator` endpoint (docs/interfaces.md): `POST {"table": "<target
 * table>", "repair": false}` with a service key; answers 200 with the validation. A
 * table too big for one request (the Edge Runtime counts CPU per isolate: retired at
 * 1 s, killed at 2 s; wall clock 150 s) answers 202 with the run's id: the run keeps its Scan checkpoints in its
 * `sync_checksums` row (which shows progress and, at the end, the result) and goes on in
 * the next request, which the validator makes itself: `POST {"runId": n}`.
 * `"pagesPerRequest"` caps the Scan pages one request reads.
 *
 * @module
 */

import { z } from "zod";
import {
  type Continuation,
  validateTable,
  type ValidationResult,
  type ValidatorDeps,
} from "./checksum_validator.ts";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import { serviceRoleProblem } from "./service_auth.ts";
import { isDatabaseUnavailable } from "./sync_db.ts";
import { byTargetTable, TABLES } from "./table_registry.ts";

const BodySchema = z.union([
  z.strictObject({
    table: z.string().min(1),
    repair: z.boolean().optional(),
    pagesPerRequest: z.number().int().positive().optional(),
  }),
  z.strictObject({
    runId: z.number().int().positive(),
    pagesPerRequest: z.number().int().positive().optional(),
  }),
]);

/** What the endpoint needs besides the validator's own dependencies. */
export interface EndpointDeps extends ValidatorDeps {
  /** The service keys callers may present (service_auth.ts, acceptedServiceKeys). */
  serviceRoleKey: string | readonly string[] | undefined;
  /** Keeps background work alive after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  /** Calls this endpoint again (another request, with a budget of its own). */
  callSelf: (body: unknown) => Promise<void>;
  /** How long a request waits for the result before answering 202. */
  answerWithinMs?: number;
}

/** Handles one request. */
export async function handleValidatorRequest(req: Request, deps: EndpointDeps): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, deps.serviceRoleKey);
  if (problem) return errorResponse(401, problem);
  let body: z.infer<typeof BodySchema>;
  try {
    const parsed = BodySchema.safeParse(JSON.parse(await req.text()));
    if (!parsed.success) {
      return errorResponse(
        400,
        'malformed body: send {"table": "<target table>", "repair": false}',
      );
    }
    body = parsed.data;
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  try {
    let table: string;
    let runId: number | undefined;
    if ("runId" in body) {
      const [run] = await deps.sql`select target_table from public.sync_checksums
                                   where id = ${body.runId} and status = 'running'`;
      if (!run) return errorResponse(404, `validation run ${body.runId} is not running`);
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
    let started: number | undefined = runId;
    const work = validateTable(
      { ...deps, budget: { cpuMs: Infinity, wallMs: Infinity, ...deps.budget, pages } },
      spec,
      { repair: "repair" in body ? body.repair : undefined, runId, onRun: (id) => (started = id) },
    ).then(async (outcome) => {
      if ("continued" in outcome) {
        await deps.callSelf({ runId: outcome.runId, pagesPerRequest: pages });
      }
      return outcome;
    });
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const timer = new Promise<"waiting">((resolve) => {
      timeout = setTimeout(() => resolve("waiting"), deps.answerWithinMs ?? 25_000);
    });
    const first = await Promise.race([work, timer]);
    clearTimeout(timeout);
    if (first === "waiting" || "continued" in (first as ValidationResult | Continuation)) {
      deps.waitUntil(
        work.catch((error) => console.error(`validation of ${spec.targetTable} failed:`, error)),
      );
      return json(202, { table: spec.targetTable, runId: started, status: "running" });
    }
    return json(200, first as ValidationResult);
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      return errorResponse(503, "the database is unavailable; retry later", { "retry-after": "5" });
    }
    console.error("validation failed:", error);
    return errorResponse(500, `validation failed: ${(error as Error).message}`);
  }
}
