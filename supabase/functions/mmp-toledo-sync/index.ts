/**
 * `mmp-toledo-sync`: the webhook that applies DynamoDB Streams records to Postgres
 * (interfaces.md, "mmp-toledo-sync").
 *
 * So far it only refuses what is not a POST; verification and the merge come with the
 * real-time sync work.
 */

import { errorResponse, methodNotAllowed } from "../../../functions-shared/http.ts";

Deno.serve((req) => {
  if (req.method !== "POST") return methodNotAllowed("POST");
  return errorResponse(501, "mmp-toledo-sync: applying changes is not implemented yet");
});
