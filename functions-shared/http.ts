/**
 * Small helpers for the JSON answers of the Edge Functions.
 *
 * @module
 */

/** A JSON response with the given status and extra headers. */
export function json(status: number, body: unknown, headers: HeadersInit = {}): Response {
  // Any form of HeadersInit; a content type given there wins.
  const all = new Headers({ "content-type": "application/json" });
  new Headers(headers).forEach((value, name) => all.set(name, value));
  return new Response(JSON.stringify(body), { status, headers: all });
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
