/**
 * The answers the hosted Edge Functions gateway gives for itself, not from a function:
 * each with its status, JSON body and `sb-error-code` header. Supabase's "Error codes"
 * page (guides/functions/error-codes): "When an Edge Function request fails, the
 * response includes a `sb-error-code` header that identifies the specific error"; its
 * "Status codes" page gives each code's status, and "Edge Functions only support these
 * HTTP methods 'POST', 'GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'" (405 otherwise).
 *
 * The sync keys on the status alone, never on a code's name: the 546's code is named
 * `WORKER_RESOURCE_LIMIT, WORKER_LIMIT` on the error-codes page, and the header here is
 * the first (current) name while the body keeps the troubleshooting page's.
 *
 * @module
 */

/** The methods the gateway passes to a function; any other is a 405. */
export const FUNCTION_METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * The body of a 546, as the hosted gateway answers a request whose isolate was killed
 * for a limit (Supabase's troubleshooting page "546 - WORKER_LIMIT Exceeded").
 */
export const WORKER_LIMIT_BODY = {
  code: "WORKER_LIMIT",
  message: "Function failed due to not having enough compute resources (please check logs)",
} as const;

/** Why a request with `verify_jwt` on was refused (the error-codes page's names). */
export type JwtRefusal =
  | "UNAUTHORIZED_NO_AUTH_HEADER"
  | "UNAUTHORIZED_INVALID_JWT_FORMAT"
  | "UNAUTHORIZED_LEGACY_JWT";

function answer(status: number, errorCode: string, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "sb-error-code": errorCode },
  });
}

/** 404 `NOT_FOUND`: no function of that name is deployed. */
export function notFound(): Response {
  return answer(404, "NOT_FOUND", {
    code: "NOT_FOUND",
    message: "Requested function was not found",
  });
}

/** 405: a method the gateway does not pass to functions (no error code documented). */
export function methodNotAllowed(method: string): Response {
  return new Response(
    JSON.stringify({
      code: 405,
      message: `Method ${method} is not allowed: Edge Functions take ${
        FUNCTION_METHODS.join(", ")
      }`,
    }),
    {
      status: 405,
      headers: { "content-type": "application/json", allow: FUNCTION_METHODS.join(", ") },
    },
  );
}

/** 401: `verify_jwt` is on and the request's JWT is missing, malformed or invalid. */
export function unauthorized(why: JwtRefusal): Response {
  return answer(401, why, { code: 401, message: "Invalid JWT" });
}

/** Which refusal an `Authorization` header earns when its JWT does not verify. */
export function jwtRefusal(authorization: string | null): JwtRefusal {
  if (authorization === null) return "UNAUTHORIZED_NO_AUTH_HEADER";
  if (!/^Bearer\s+[^.\s]+\.[^.\s]+\.[^.\s]+$/i.test(authorization)) {
    return "UNAUTHORIZED_INVALID_JWT_FORMAT";
  }
  return "UNAUTHORIZED_LEGACY_JWT";
}

/** 500 `WORKER_ERROR`: the function's isolate failed under the request. */
export function workerError(): Response {
  return answer(500, "WORKER_ERROR", {
    code: "WORKER_ERROR",
    message: "Function exited due to an error (please check logs)",
  });
}

/** 503 `BOOT_ERROR`: the function's isolate could not start. */
export function bootError(message: string): Response {
  return answer(503, "BOOT_ERROR", { code: "BOOT_ERROR", message });
}

/** 504 `IDLE_TIMEOUT`: no response within the request idle limit. */
export function idleTimeout(seconds: number): Response {
  return answer(504, "IDLE_TIMEOUT", {
    code: "IDLE_TIMEOUT",
    message: `Function did not respond in ${seconds} s`,
  });
}

/** 546 `WORKER_RESOURCE_LIMIT`: the isolate was killed for a limit (CPU, memory, wall clock). */
export function workerResourceLimit(): Response {
  return answer(546, "WORKER_RESOURCE_LIMIT", WORKER_LIMIT_BODY);
}
