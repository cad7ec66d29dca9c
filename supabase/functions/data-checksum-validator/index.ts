/**
 * `data-checksum-validator`: compares a DynamoDB table with its Postgres target
 * (interfaces.md, "data-checksum-validator").
 *
 * So far it authenticates its caller; the comparison comes with the validator work.
 */

import { errorResponse, methodNotAllowed } from "../../../functions-shared/http.ts";
import { serviceRoleProblem } from "../../../functions-shared/service_auth.ts";

Deno.serve((req) => {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, Deno.env.get("SUPABASE_SERVICE_ROLE_KEY"));
  if (problem) return errorResponse(401, problem);
  return errorResponse(501, "data-checksum-validator: validation is not implemented yet");
});
