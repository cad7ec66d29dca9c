/**
 * The hosted platform's limit on calls between Edge Functions, for the local gateway
 * (functions_gateway.ts) and the isolates' shim (edge_runtime_shim.ts).
 *
 * What hosted does (https://supabase.com/docs/guides/functions/recursive-functions):
 * "outbound `fetch()` calls made by your Edge Functions to other Edge Functions within
 * your project" are rate limited; "each request chain has a budget of at least 5,000
 * requests per minute", shared by every call of the chain (A calls B calls C: all three
 * count); past it, the caller's `fetch` throws a `RateLimitError` with `retryAfterMs`.
 * Inbound requests and calls to anything else are not counted. From supabase/edge-runtime:
 * - the chain is the W3C trace of the request being served (`traceparent`, read in
 *   ext/runtime/js/http.js: `00-{trace-id}-{parent-id}-{flags}`, a 32-character trace id)
 *   and outbound calls carry it on, so a chain of self-calls shares one trace forever; all
 *   downstream calls of one execution "share a single Trace ID" (Supabase's troubleshooting
 *   article "Rate limit exceeded for trace");
 * - the budget is a fixed window per key, opened by the first call and reset once its
 *   time has passed; a refused call is told the milliseconds to the window's end
 *   (ext/runtime/rate_limit.rs, `check_and_increment`); a call outside any request (no
 *   trace) counts against the function's own key;
 * - the refusal's message is `Rate limit exceeded for trace <id>. Retry after <n>ms.`, or
 *   `Rate limit exceeded for function. …` without a trace (vendor/deno_fetch/26_fetch.js).
 *
 * Locally the count lives in the gateway, which every call between functions goes
 * through (as the hosted table is shared by every worker of a project): the shim marks a
 * function's `fetch` of a function URL with {@link OUTBOUND_CALL_HEADER}, the gateway
 * takes it from the chain's budget ({@link CallBudget}) or refuses it with
 * {@link REFUSED_RETRY_HEADER}, and the shim turns that refusal into the thrown
 * `RateLimitError`, as hosted.
 *
 * @module
 */

import { FixedWindows } from "./fixed_windows.ts";

/**
 * The isolate's function name, for the shim alone: it reads it and removes it from the
 * environment before the function's code runs (hosted functions have no such variable).
 */
export const FUNCTION_NAME_ENV = "LOCAL_EDGE_FUNCTION_NAME";
/**
 * The gateway's pid, for the shim alone (removed as the name is): the isolate ends once
 * its parent is another process. Read from its parent at boot instead, a gateway that
 * died while the isolate booted (seconds, on a loaded machine) was never noticed.
 */
export const GATEWAY_PID_ENV = "LOCAL_EDGE_GATEWAY_PID";
/** Set by the shim on a function's call of a function: the calling function's name. */
export const OUTBOUND_CALL_HEADER = "x-local-outbound-call";
/** Set by the gateway on a call it refused: the milliseconds until the budget resets. */
export const REFUSED_RETRY_HEADER = "x-local-call-refused-retry-after-ms";
/** The budget's window: hosted counts "requests per minute". */
export const CALL_WINDOW_MS = 60_000;

/** The trace id of a `traceparent` header, as the hosted runtime reads it; null if none. */
export function traceIdOf(traceparent: string | null): string | null {
  if (!traceparent) return null;
  const parts = traceparent.split("-");
  return parts.length >= 4 && parts[1].length === 32 ? parts[1] : null;
}

/** `chars` random hexadecimal digits, never all zeros (W3C's invalid id). */
const randomHex = (chars: number) => crypto.randomUUID().replaceAll("-", "").slice(0, chars);

/**
 * A `traceparent` (W3C Trace Context, version 00, sampled) in the trace `traceId`, or in
 * a new trace; each call is a new span of it.
 */
export function traceparent(traceId: string = randomHex(32)): string {
  return `00-${traceId}-${randomHex(16)}-01`;
}

/** The refusal's message, as the hosted runtime's `fetch` throws it. */
export function refusalMessage(traceId: string | null, retryAfterMs: number): string {
  const hint = retryAfterMs > 0 ? ` Retry after ${retryAfterMs}ms.` : "";
  return traceId
    ? `Rate limit exceeded for trace ${traceId}.${hint}`
    : `Rate limit exceeded for function.${hint}`;
}

/**
 * Budgets of calls between functions: `perWindow` calls per chain in a fixed window of
 * {@link CALL_WINDOW_MS} opened by the chain's first call (ext/runtime/rate_limit.rs).
 */
export class CallBudget extends FixedWindows {
  constructor(perWindow: number, now: () => number = Date.now) {
    super(perWindow, CALL_WINDOW_MS, now);
  }
}

/**
 * What the gateway does with a request's trace and, for a call between functions, its
 * budget: the headers to send the function on with, or the refusal to answer.
 * - An inbound request without a trace starts one (each execution has a trace id); one
 *   with a trace keeps it.
 * - A call between functions ({@link OUTBOUND_CALL_HEADER}) is taken from its trace's
 *   budget, or the calling function's own when it has no trace; refused, it answers 429
 *   with {@link REFUSED_RETRY_HEADER} and never reaches the function.
 */
export function admitCall(
  headers: Headers,
  budget: CallBudget,
): { forward: Headers } | { refused: Response } {
  const forward = new Headers(headers);
  const caller = forward.get(OUTBOUND_CALL_HEADER);
  forward.delete(OUTBOUND_CALL_HEADER);
  const traceId = traceIdOf(forward.get("traceparent"));
  if (caller !== null) {
    const verdict = budget.take(traceId ?? `function:${caller}`);
    if (!verdict.allowed) {
      return {
        refused: Response.json(
          { code: "RATE_LIMITED", message: refusalMessage(traceId, verdict.retryAfterMs) },
          { status: 429, headers: { [REFUSED_RETRY_HEADER]: String(verdict.retryAfterMs) } },
        ),
      };
    }
  }
  if (!traceId) forward.set("traceparent", traceparent());
  return { forward };
}
