import assert from "node:assert/strict";
import { selfInvoker } from "./self_invoke.ts";

Deno.test("a function calls itself at its own URL with the service role key", async () => {
  const calls: { url: string; init: RequestInit }[] = [];
  const invoke = selfInvoker({
    supabaseUrl: "https://ref.supabase.co/",
    functionName: "import-worker",
    serviceRoleKey: "key",
    log: () => {},
    fetch: (url, init) => {
      calls.push({ url: String(url), init: init! });
      return Promise.resolve(new Response("{}", { status: 202 }));
    },
  });
  await invoke({ runId: 7 });
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, "https://ref.supabase.co/functions/v1/import-worker");
  assert.equal(calls[0].init.method, "POST");
  assert.equal((calls[0].init.headers as Record<string, string>).authorization, "Bearer key");
  assert.equal(calls[0].init.body, '{"runId":7}');
});

Deno.test("a failed self-call is logged with its cause, never thrown", async () => {
  const lines: string[] = [];
  const options = {
    supabaseUrl: "http://x",
    functionName: "v",
    serviceRoleKey: "k",
    log: (l: string) => lines.push(l),
  };
  await selfInvoker({ ...options, fetch: () => Promise.reject(new Error("connection refused")) })(
    {},
  );
  await selfInvoker({
    ...options,
    fetch: () =>
      Promise.resolve(Response.json({ error: "validation run 9 does not exist" }, { status: 404 })),
  })({ runId: 9 });
  // The Edge Runtime's own refusal, as its fetch throws it (a RateLimitError).
  const limited = Object.assign(
    new Error(
      "Rate limit exceeded for trace 0af7651916cd43dd8448eb211c80319c. Retry after 5000ms.",
    ),
    { name: "RateLimitError", retryAfterMs: 5000 },
  );
  await selfInvoker({ ...options, fetch: () => Promise.reject(limited) })({ runId: 3 });
  assert.deepEqual(lines, [
    "v could not call itself with {}: connection refused",
    'v could not call itself with {"runId":9}: HTTP 404 {"error":"validation run 9 does not exist"}',
    'v could not call itself with {"runId":3}: Rate limit exceeded for trace ' +
    "0af7651916cd43dd8448eb211c80319c. Retry after 5000ms. (the platform's limit on calls " +
    "between functions; pg_cron's next sweep resumes the work)",
  ]);
});

Deno.test("a failed self-call's log never quotes the service key, whatever fetch's error says", async () => {
  const lines: string[] = [];
  // Deno's fetch refusing a header quotes its value whole.
  await selfInvoker({
    supabaseUrl: "http://x",
    functionName: "v",
    serviceRoleKey: "sb_secret_abc",
    log: (l) => lines.push(l),
    fetch: () => Promise.reject(new TypeError('Invalid header value: "Bearer sb_secret_abc"')),
  })({});
  assert.deepEqual(lines, [
    'v could not call itself with {}: Invalid header value: "Bearer (the service key)"',
  ]);
});

Deno.test("the next request is pinned to the region this one runs in", async () => {
  const calls: { url: string; init: RequestInit }[] = [];
  await selfInvoker({
    supabaseUrl: "https://ref.supabase.co",
    functionName: "data-checksum-validator",
    serviceRoleKey: "key",
    region: "us-east-1",
    log: () => {},
    fetch: (url, init) => {
      calls.push({ url: String(url), init: init! });
      return Promise.resolve(new Response(null, { status: 202 }));
    },
  })({});
  assert.equal(
    calls[0].url,
    "https://ref.supabase.co/functions/v1/data-checksum-validator?forceFunctionRegion=us-east-1",
  );
  assert.equal((calls[0].init.headers as Record<string, string>)["x-region"], "us-east-1");
});

Deno.test("a self-call whose answer does not come is given up at its timeout and logged", async () => {
  const lines: string[] = [];
  const invoke = selfInvoker({
    supabaseUrl: "http://x",
    functionName: "import-worker",
    serviceRoleKey: "k",
    log: (l) => lines.push(l),
    timeoutMs: 20,
    // A platform that never answers: only the call's own signal ends the wait.
    fetch: (_url, init) =>
      new Promise((_, reject) =>
        init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason))
      ),
  });
  await invoke({});
  assert.equal(lines.length, 1);
  assert.equal(
    lines[0],
    "import-worker could not call itself with {}: no answer within 20 ms (the request may " +
      "still run; if not, pg_cron's next tick wakes another)",
  );
});
