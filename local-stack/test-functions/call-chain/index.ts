/**
 * `call-chain`: a test function for tests/edge_gateway_limits_test.ts, served only by a
 * gateway started with EDGE_TEST_FUNCTIONS=1 (never deployed).
 * `GET /call-chain?hops=N` calls itself with N - 1 while N > 0, as a backfill hands on,
 * and answers the trace it ran in, what its call answered, and what that call threw;
 * `GET /call-chain?other=1` fetches a URL of the gateway that is no function's instead.
 */

const functionsUrl = `${Deno.env.get("SUPABASE_URL")}/functions/v1/call-chain`;

Deno.serve(async (req) => {
  const url = new URL(req.url);
  const hops = Number(url.searchParams.get("hops") ?? "0");
  const trace = req.headers.get("traceparent")?.split("-")[1] ?? null;
  let next: unknown = null;
  let error: unknown = null;
  try {
    if (url.searchParams.has("other")) {
      const other = await fetch(`${Deno.env.get("SUPABASE_URL")}/rest/v1/x`);
      next = { status: other.status };
      await other.body?.cancel();
    } else if (hops > 0) {
      next = await (await fetch(`${functionsUrl}?hops=${hops - 1}`)).json();
    }
  } catch (e) {
    const thrown = e as Error & { retryAfterMs?: number };
    error = {
      name: thrown.name,
      message: thrown.message,
      retryAfterMs: thrown.retryAfterMs ?? null,
      // deno-lint-ignore no-explicit-any
      isRateLimitError: e instanceof (Deno.errors as any).RateLimitError,
    };
  }
  return Response.json({ trace, next, error });
});
