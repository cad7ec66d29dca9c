/**
 * Small helpers for the JSON answers of the Edge Functions.
 *
 * @module
 */

/** A JSON response with the given status and extra headers. */
export function json(status: number, body: unknown, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** An error answer: `{"error": message}` with the status. */
export function errorResponse(
  status: number,
  message: string,
  headers: HeadersInit = {},
): Response {
  return json(status, { error: message }, headers);
}

/** 405 for anything but the allowed method, with the `Allow` header set. */
export function methodNotAllowed(allowed: string): Response {
  return errorResponse(405, `method not allowed: use ${allowed}`, { allow: allowed });
}
