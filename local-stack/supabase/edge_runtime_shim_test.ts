import assert from "node:assert/strict";
import { join } from "node:path";
import { DENO_BIN, ROOT } from "../config.ts";
import { isAlive } from "../proc_table.ts";
import { parseMemoryReport } from "./edge_limits.ts";
import { GATEWAY_PID_ENV } from "./function_calls.ts";

/**
 * Runs `code` in a Deno process with the shim preloaded, as an isolate runs; its exit.
 * With `env`, the process may read its environment and use the network.
 */
async function inIsolate(code: string, env?: Record<string, string>) {
  const dir = await Deno.makeTempDir();
  try {
    const main = join(dir, "main.ts");
    await Deno.writeTextFile(main, code);
    const out = await new Deno.Command(DENO_BIN, {
      args: [
        "run",
        "--no-prompt",
        ...(env ? ["--allow-env", "--allow-net"] : []),
        "--preload",
        join(ROOT, "local-stack", "supabase", "edge_runtime_shim.ts"),
        main,
      ],
      ...(env ? { env } : {}),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a waitUntil promise that rejects unhandled ends the isolate and its other work, as hosted", async () => {
  const ended = await inIsolate(`
    declare const EdgeRuntime: { waitUntil(p: Promise<unknown>): void };
    // Another request's background work, which the failure takes down with it.
    EdgeRuntime.waitUntil(new Promise((resolve) => setTimeout(() => {
      console.log("the other task finished");
      resolve(undefined);
    }, 500)));
    EdgeRuntime.waitUntil(Promise.reject(new Error("a run failed")));
  `);
  assert.notEqual(ended.code, 0);
  assert.match(ended.stderr, /a run failed/);
  assert.doesNotMatch(ended.stdout, /the other task finished/);
});

Deno.test("a waitUntil promise whose failure is handled, or a rejection prevented, ends nothing", async () => {
  const kept = await inIsolate(`
    declare const EdgeRuntime: { waitUntil(p: Promise<unknown>): void };
    globalThis.addEventListener("unhandledrejection", (event) => {
      if ((event.reason as Error).message === "the database is down") event.preventDefault();
    });
    EdgeRuntime.waitUntil(Promise.reject(new Error("a run failed")).catch(() => {}));
    EdgeRuntime.waitUntil(Promise.reject(new Error("the database is down")));
    await new Promise((resolve) => setTimeout(resolve, 200));
    console.log("still here");
  `);
  assert.equal(kept.code, 0, kept.stderr);
  assert.match(kept.stdout, /still here/);
});

Deno.test("waitUntil answers its argument, as hosted's does", async () => {
  const out = await inIsolate(`
    declare const EdgeRuntime: { waitUntil<T>(p: T): T };
    const work = new Promise((resolve) => setTimeout(() => resolve("done"), 50));
    console.log(EdgeRuntime.waitUntil(work) === work, await EdgeRuntime.waitUntil(work));
    console.log(EdgeRuntime.waitUntil(7));
  `);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, "true done\n7\n");
});

Deno.test("a function's calls of functions carry its request's trace, even from waitUntil work; a refusal throws RateLimitError", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const base = `http://127.0.0.1:${port}`;
  const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  // One server stands for the gateway (the function URLs) and for the function (/entry).
  const ran = await inIsolate(
    `
    declare const EdgeRuntime: { waitUntil(p: Promise<unknown>): void };
    const seen: Record<string, string | null>[] = [];
    let background: Promise<unknown> = Promise.resolve();
    const server = Deno.serve({ hostname: "127.0.0.1", port: ${port} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/functions/v1/refuse") {
        return Response.json({}, { status: 429, headers: { "x-local-call-refused-retry-after-ms": "1234" } });
      }
      if (path.startsWith("/functions/v1/")) {
        seen.push({
          path,
          traceparent: req.headers.get("traceparent"),
          caller: req.headers.get("x-local-outbound-call"),
        });
        return new Response("ok");
      }
      if (path !== "/entry") return new Response("not found", { status: 404 });
      // The function: its call runs after it answered, as a hand-on does.
      background = new Promise((r) => setTimeout(r, 20))
        .then(() => fetch("${base}/functions/v1/next"))
        .then((r) => r.text());
      EdgeRuntime.waitUntil(background);
      return new Response("accepted");
    });
    await (await fetch("${base}/entry", {
      headers: { traceparent: "00-${trace}-00f067aa0ba902b7-01" },
    })).text();
    await background;
    // Outside any request: no trace, whatever header the caller sets.
    await (await fetch(new Request("${base}/functions/v1/outside", {
      headers: { traceparent: "00-${"f".repeat(32)}-00f067aa0ba902b7-01" },
    }))).text();
    // Not a function URL: untouched (an object with toString, as fetch accepts).
    await (await fetch({ toString: () => "${base}/rest/v1/x" } as unknown as string)).text();
    let refused = null;
    try {
      await fetch(new URL("${base}/functions/v1/refuse"));
    } catch (e) {
      refused = {
        name: (e as Error).name,
        message: (e as Error).message,
        retryAfterMs: (e as { retryAfterMs: number }).retryAfterMs,
        isRateLimitError: e instanceof (Deno.errors as any).RateLimitError,
      };
    }
    await server.shutdown();
    console.log(JSON.stringify({ seen, refused, envHidden: Deno.env.get("LOCAL_EDGE_FUNCTION_NAME") ?? null }));
  `,
    { SUPABASE_URL: `${base}/`, LOCAL_EDGE_FUNCTION_NAME: "import-worker" },
  );
  assert.equal(ran.code, 0, ran.stderr);
  assert.doesNotMatch(ran.stdout, /Listening on/, "hosted prints no line when a server starts");
  const out = JSON.parse(ran.stdout.trim().split("\n").at(-1)!);
  assert.equal(out.envHidden, null, "the function never sees the shim's variable");
  assert.equal(out.seen.length, 2, JSON.stringify(out.seen));
  assert.equal(out.seen[0].path, "/functions/v1/next");
  assert.match(out.seen[0].traceparent, new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
  assert.equal(out.seen[0].caller, "import-worker");
  assert.deepEqual(out.seen[1], {
    path: "/functions/v1/outside",
    traceparent: null,
    caller: "import-worker",
  });
  assert.deepEqual(out.refused, {
    name: "RateLimitError",
    message: "Rate limit exceeded for function. Retry after 1234ms.",
    retryAfterMs: 1234,
    isRateLimitError: true,
  });
});

Deno.test("an isolate reads no CPU of its own (the hosted stub warns and answers zeros), and ports 25 and 587 are refused, node:net's too", async () => {
  const ran = await inIsolate(
    `
    import process from "node:process";
    console.log(JSON.stringify(process.cpuUsage()));
    for (const target of ["http://127.0.0.1:25/", "http://127.0.0.1:587/"]) {
      await fetch(target).then(() => console.log("sent"), (e) => console.log(e.name + ": " + e.message));
    }
    await Deno.connect({ hostname: "127.0.0.1", port: 587 })
      .then(() => console.log("connected"), (e) => console.log(e.name + ": " + e.message));
    const { default: net } = await import("node:net");
    const { default: tls } = await import("node:tls");
    for (const open of [
      () => net.connect({ host: "127.0.0.1", port: 25 }),
      () => net.connect(587, "127.0.0.1"),
      () => tls.connect({ host: "127.0.0.1", port: 587 }),
    ]) {
      await new Promise((resolve) => {
        const socket = open();
        socket.on("error", (e) => resolve(console.log(e.name + ": " + e.message)));
        socket.on("connect", () => resolve(console.log("connected", socket.destroy())));
      });
    }
  `,
    {},
  );
  assert.equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trim().split("\n");
  assert.deepEqual(lines[0], JSON.stringify({ user: 0, system: 0 }));
  assert.match(ran.stderr, /Warning: Not implemented: process\.cpuUsage\(\)/);
  assert.deepEqual(lines.slice(1), [
    "TypeError: error sending request: outgoing connections to port 25 are not allowed on Supabase Edge Functions",
    "TypeError: error sending request: outgoing connections to port 587 are not allowed on Supabase Edge Functions",
    "TypeError: error sending request: outgoing connections to port 587 are not allowed on Supabase Edge Functions",
    // node:net and node:tls too.
    "TypeError: error sending request: outgoing connections to port 25 are not allowed on Supabase Edge Functions",
    "TypeError: error sending request: outgoing connections to port 587 are not allowed on Supabase Edge Functions",
    "TypeError: error sending request: outgoing connections to port 587 are not allowed on Supabase Edge Functions",
  ]);
});

Deno.test("an isolate whose gateway died ends within seconds", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const main = join(dir, "main.ts");
    await Deno.writeTextFile(
      main,
      `Deno.serve({ port: 0, onListen: () => {} }, () => new Response("x"));`,
    );
    const shim = join(ROOT, "local-stack", "supabase", "edge_runtime_shim.ts");
    // A parent that starts the isolate, prints its pid and dies at once, unannounced.
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        `${GATEWAY_PID_ENV}=$$ "${DENO_BIN}" run -A --preload "${shim}" "${main}" >/dev/null 2>&1 & echo $!; sleep 1; kill -9 $$`,
      ],
      stdout: "piped",
    }).output();
    const pid = Number(new TextDecoder().decode(out.stdout).trim());
    assert.ok(pid > 0);
    // A zombie not reaped yet counts as ended (processes.ts); 30 s covers a cold `deno run`
    // on a loaded machine (the shim checks its parent every second once it has started).
    const alive = () => isAlive(pid);
    const deadline = Date.now() + 30_000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const lingering = alive();
    if (lingering) Deno.kill(pid, "SIGKILL");
    assert.equal(lingering, false, "the isolate ended once its parent had gone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The largest memory an isolate reported on its stderr (edge_limits.ts), in MB. */
function mostReported(stderr: string): number {
  const reports = stderr.split("\n").map(parseMemoryReport).filter((r) => r !== undefined);
  return Math.max(0, ...reports.map((r) => r.memoryMb));
}

Deno.test("memory a timer of the function's own grows while no request is in flight is reported, as hosted checks after every turn", async () => {
  // 24 MB of external memory: under V8's threshold for a collection of its own (64 MB),
  // so only a look after the timer's turn can see it.
  const ran = await inIsolate(`
    import { promisify } from "node:util";
    const held: Uint8Array[] = [];
    setTimeout(() => held.push(new Uint8Array(24 * 1048576).fill(1)), 1_500);
    setTimeout(() => Deno.exit(0), 1_800);
    // The wrapped timers keep their own properties (util.promisify.custom).
    console.log(await promisify(setTimeout)(10, "promisified"));
  `);
  assert.equal(ran.code, 0, ran.stderr);
  assert.ok(mostReported(ran.stderr) >= 24, ran.stderr);
  assert.match(ran.stdout, /^promisified$/m);
});

Deno.test("memory a response's body grows while it streams, after its handler has returned, is reported", async () => {
  const dir = await Deno.makeTempDir();
  let reported = "";
  try {
    const main = join(dir, "main.ts");
    // Each pull of the body holds 1 MB more, paced by a client that reads slowly: the
    // last pulls run seconds after the handler returned its Response, with no timer of
    // its own.
    await Deno.writeTextFile(
      main,
      `const held: Uint8Array[] = [];
      Deno.serve({ port: 0, onListen: ({ port }) => console.log("port " + port) }, () => {
        let chunks = 0;
        return new Response(new ReadableStream({
          pull(controller) {
            if (chunks++ === 40) return controller.close();
            const chunk = new Uint8Array(1048576).fill(1);
            held.push(chunk);
            controller.enqueue(chunk);
          },
        }, { highWaterMark: 0 }));
      });`,
    );
    const shim = join(ROOT, "local-stack", "supabase", "edge_runtime_shim.ts");
    const isolate = new Deno.Command(DENO_BIN, {
      args: ["run", "-A", "--preload", shim, main],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(isolate.stderr).text();
    try {
      const lines = isolate.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const port = Number((await lines.read()).value?.match(/port (\d+)/)?.[1]);
      const body = (await fetch(`http://127.0.0.1:${port}/`)).body!.getReader();
      let read = 0;
      for (let next = await body.read(); !next.done; next = await body.read()) {
        const before = read;
        read += next.value.length;
        if (Math.floor(read / 1048576) > Math.floor(before / 1048576)) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert.equal(read, 40 * 1048576);
      // A look comes within 25 ms of the body's end (MEMORY_REPORT_MS).
      await new Promise((resolve) => setTimeout(resolve, 300));
      lines.releaseLock();
    } finally {
      try {
        isolate.kill("SIGKILL");
      } catch { /* it has ended already */ }
      await isolate.status;
      reported = await stderr;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(mostReported(reported) >= 40, reported);
});

Deno.test("an isolate has the hosted runtime's globals: no Worker, no shared memory, one CPU, V8 13.0's JavaScript", async () => {
  const ran = await inIsolate(`
    const shared = (() => {
      try {
        new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
        return "made";
      } catch (error) {
        return (error as Error).message;
      }
    })();
    console.log(JSON.stringify({
      worker: typeof (globalThis as { Worker?: unknown }).Worker,
      sharedArrayBuffer: SharedArrayBuffer === ArrayBuffer,
      shared,
      plainMemory: new WebAssembly.Memory({ initial: 1 }).buffer.byteLength,
      cpus: navigator.hardwareConcurrency,
      // What V8 shipped after the hosted runtime's 13.0 (edge_globals.ts).
      newer: {
        isError: typeof (Error as { isError?: unknown }).isError,
        disposableStack: typeof (globalThis as { DisposableStack?: unknown }).DisposableStack,
        float16Array: typeof (globalThis as { Float16Array?: unknown }).Float16Array,
        escape: typeof (RegExp as { escape?: unknown }).escape,
        fromBase64: typeof (Uint8Array as { fromBase64?: unknown }).fromBase64,
        toHex: typeof (new Uint8Array(1) as { toHex?: unknown }).toHex,
        getOrInsert: typeof (new Map() as { getOrInsert?: unknown }).getOrInsert,
        temporal: typeof (globalThis as { Temporal?: unknown }).Temporal,
      },
      // What it had already stays.
      older: [typeof Promise.try, typeof Array.fromAsync, typeof Iterator.from],
    }));
  `);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(ran.stdout), {
    worker: "undefined",
    sharedArrayBuffer: true,
    shared: "Creating a shared memory is not supported",
    plainMemory: 65536,
    cpus: 1,
    newer: {
      isError: "undefined",
      disposableStack: "undefined",
      float16Array: "undefined",
      escape: "undefined",
      fromBase64: "undefined",
      toHex: "undefined",
      getOrInsert: "undefined",
      temporal: "undefined",
    },
    older: ["function", "function", "function"],
  });
});
