/**
 * The `data-checksum-validator` endpoint (interfaces.md): `POST {"table": "<target
 * table>", "repair": false}` with the service role key; answers 200 with the
 * validation, or, when a table takes longer than one request may wait, 202 with the run
 * id while the run goes on in the background (its row in `sync_checksums` shows
 * progress and, at the end, the result).
 *
 * @module
 */

import { z } from "zod";
import { validateTable, type ValidationResult, type ValidatorDeps } from "./checksum_validator.ts";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import { serviceRoleProblem } from "./service_auth.ts";
import { isDatabaseUnavailable } from "./sync_db.ts";
import { byTargetTable, TABLES } from "./table_registry.ts";

const BodySchema = z.strictObject({ table: z.string().min(1), repair: z.boolean().optional() });

/** What the endpoint needs besides the validator's own dependencies. */
export interface EndpointDeps extends ValidatorDeps {
  serviceRoleKey: string | undefined;
  /** Keeps background work alive after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
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
      const issue = parsed.error.issues[0];
      return errorResponse(
        400,
        `malformed body at ${issue.path.join(".") || "(the body)"}: ${issue.message}`,
      );
    }
    body = parsed.data;
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  const spec = byTargetTable(body.table);
  if (!spec) {
    return errorResponse(
      400,
      `${body.table} is not a target table; known: ${TABLES.map((t) => t.targetTable).join(", ")}`,
    );
  }
  let runId: number | undefined;
  const work = validateTable(deps, spec, { repair: body.repair, onRun: (id) => (runId = id) });
  const timer = new Promise<"waiting">((resolve) =>
    setTimeout(() => resolve("waiting"), deps.answerWithinMs ?? 25_000)
  );
  try {
    const first = await Promise.race([work, timer]);
    if (first === "waiting") {
      deps.waitUntil(
        work.catch((error) => console.error(`validation of ${spec.targetTable} failed:`, error)),
      );
      return json(202, { table: spec.targetTable, runId, status: "running" });
    }
    return json(200, first as ValidationResult);
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      return errorResponse(503, "the database is unavailable; retry later", { "retry-after": "5" });
    }
    console.error(`validation of ${spec.targetTable} failed:`, error);
    return errorResponse(
      500,
      `validation of ${spec.targetTable} failed: ${(error as Error).message}`,
    );
  }
}
