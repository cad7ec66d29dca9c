/**
 * `burn-cpu`: a test function for tests/edge_limits_test.ts, served only by a gateway
 * started with EDGE_TEST_FUNCTIONS=1 (never deployed).
 * `GET /burn-cpu?cpu_ms=N&sleep_ms=M&alloc_mb=A&external_mb=E` burns N ms of this
 * process's CPU (in a loop that allocates nothing, so nearly all on the main thread, which
 * the gateway counts), keeps A MB more of arrays alive (V8's heap) and E MB of ArrayBuffers
 * (external memory, never written: no page of it is resident), then waits M ms, then
 * answers which isolate served it (its pid), how much CPU the isolate has used, and the
 * `beforeunload` reasons it was sent.
 */

const reasons: string[] = [];
const kept: number[][] = [];
const keptExternal: Uint8Array[] = [];
addEventListener("beforeunload", (event) => {
  reasons.push((event as CustomEvent<{ reason: string }>).detail?.reason ?? "none");
});

/**
 * The CPU this process has used, in ms: the real `process.cpuUsage()` that the shim keeps
 * aside (local-stack/supabase/edge_runtime_shim.ts), where the isolate's own is the hosted
 * runtime's stub.
 */
function cpuMs(): number {
  const real = (globalThis as Record<symbol, unknown>)[Symbol.for("local-stack.realCpuUsage")];
  const { user, system } = (real as () => { user: number; system: number })();
  return (user + system) / 1000;
}

Deno.serve(async (req) => {
  const url = new URL(req.url);
  const burn = Number(url.searchParams.get("cpu_ms") ?? "0");
  const sleep = Number(url.searchParams.get("sleep_ms") ?? "0");
  const allocMb = Number(url.searchParams.get("alloc_mb") ?? "0");
  const externalMb = Number(url.searchParams.get("external_mb") ?? "0");
  const until = cpuMs() + burn;
  let x = 0;
  while (cpuMs() < until) {
    for (let i = 0; i < 10_000; i++) x += Math.sqrt(i);
  }
  for (let mb = 0; mb < allocMb; mb++) {
    // 1 MB of distinct doubles in a plain array (not external memory).
    kept.push(Array.from({ length: 131_072 }, (_, i) => i + mb + Math.random()));
    if (mb % 16 === 15) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  for (let mb = 0; mb < externalMb; mb++) {
    keptExternal.push(new Uint8Array(1024 * 1024));
    if (mb % 16 === 15) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (sleep > 0) await new Promise((resolve) => setTimeout(resolve, sleep));
  return Response.json({ pid: Deno.pid, cpu_ms: Math.round(cpuMs()), reasons, x: x > 0 });
});
