import assert from "node:assert/strict";
import {
  admitCall,
  CALL_WINDOW_MS,
  CallBudget,
  OUTBOUND_CALL_HEADER,
  refusalMessage,
  REFUSED_RETRY_HEADER,
  traceIdOf,
  traceparent,
} from "./function_calls.ts";

const TRACE = "0af7651916cd43dd8448eb211c80319c";

Deno.test("a traceparent's trace id is read as the hosted runtime reads it", () => {
  assert.equal(traceIdOf(`00-${TRACE}-b7ad6b7169203331-01`), TRACE);
  assert.equal(traceIdOf(null), null);
  assert.equal(traceIdOf("00-short-b7ad6b7169203331-01"), null);
  assert.equal(traceIdOf(`00-${TRACE}-b7ad6b7169203331`), null);
  const made = traceparent(TRACE);
  assert.match(made, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  assert.notEqual(traceparent(TRACE), made, "each call is a new span");
  assert.equal(traceIdOf(traceparent())?.length, 32, "a new trace");
});

Deno.test("a budget of zero refuses every call", () => {
  const budget = new CallBudget(0, () => 0);
  assert.deepEqual(budget.take("a"), { allowed: false, retryAfterMs: CALL_WINDOW_MS });
});

Deno.test("the refusal reads as the hosted runtime's", () => {
  assert.equal(
    refusalMessage(TRACE, 5000),
    `Rate limit exceeded for trace ${TRACE}. Retry after 5000ms.`,
  );
  assert.equal(refusalMessage(null, 0), "Rate limit exceeded for function.");
});

Deno.test("an inbound request starts a trace or keeps its own, and is never counted", () => {
  const budget = new CallBudget(0, () => 0);
  const fresh = admitCall(new Headers({ "x-a": "1" }), budget);
  assert.ok("forward" in fresh);
  assert.equal(traceIdOf(fresh.forward.get("traceparent"))?.length, 32);
  assert.equal(fresh.forward.get("x-a"), "1");
  const given = `00-${TRACE}-b7ad6b7169203331-01`;
  const kept = admitCall(new Headers({ traceparent: given }), budget);
  assert.ok("forward" in kept);
  assert.equal(kept.forward.get("traceparent"), given);
  assert.equal(budget.size, 0);
});

Deno.test("a call between functions takes from its trace's budget, else the caller's own", async () => {
  const budget = new CallBudget(1, () => 0);
  const call = (headers: Record<string, string>) =>
    admitCall(new Headers({ [OUTBOUND_CALL_HEADER]: "import-worker", ...headers }), budget);
  const first = call({ traceparent: traceparent(TRACE) });
  assert.ok("forward" in first);
  assert.equal(first.forward.has(OUTBOUND_CALL_HEADER), false, "the function never sees it");
  const second = call({ traceparent: traceparent(TRACE) });
  assert.ok("refused" in second);
  assert.equal(second.refused.status, 429);
  assert.equal(second.refused.headers.get(REFUSED_RETRY_HEADER), String(CALL_WINDOW_MS));
  assert.deepEqual(await second.refused.json(), {
    code: "RATE_LIMITED",
    message: `Rate limit exceeded for trace ${TRACE}. Retry after ${CALL_WINDOW_MS}ms.`,
  });
  // Without a trace: the function's own budget, then a new trace for the callee.
  const untraced = call({});
  assert.ok("forward" in untraced);
  assert.equal(traceIdOf(untraced.forward.get("traceparent"))?.length, 32);
  const again = call({});
  assert.ok("refused" in again);
  assert.match((await again.refused.json()).message, /^Rate limit exceeded for function\./);
});

Deno.test("a call budget's window is 60,000 ms, refused to its last millisecond", () => {
  let now = 0;
  const budget = new CallBudget(1, () => now);
  assert.deepEqual(budget.take("t"), { allowed: true });
  now = 59_999;
  assert.deepEqual(budget.take("t"), { allowed: false, retryAfterMs: 1 });
  now = 60_000;
  assert.deepEqual(budget.take("t"), { allowed: true });
});
