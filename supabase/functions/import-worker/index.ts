/**
 * `import-worker`: runs the pending backfill jobs (interfaces.md, "import-worker").
 *
 * So far it authenticates its caller and accepts the call; claiming and scanning
 * segments comes with the backfill work.
 */

import { errorResponse, json, methodNotAllowed } from "../../../functions-shared/http.ts";
import { serviceRoleProblem } from "../../../functions-shared/service_auth.ts";

Deno.serve((req) => {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, Deno.env.get("SUPABASE_SERVICE_ROLE_KEY"));
  if (problem) return errorResponse(401, problem);
  return json(202, { accepted: true, claimedSegments: 0 });
});
