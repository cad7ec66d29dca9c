import assert from "node:assert/strict";
import { join } from "node:path";
import { DENO_BIN, ROOT } from "../config.ts";

/** Runs `code` in a Deno process with the shim preloaded, as an isolate runs; its exit. */
async function inIsolate(code: string) {
  const dir = await Deno.makeTempDir();
  try {
    const main = join(dir, "main.ts");
    await Deno.writeTextFile(main, code);
    const out = await new Deno.Command(DENO_BIN, {
      args: [
        "run",
        "--no-prompt",
        "--preload",
        join(ROOT, "local-stack", "supabase", "edge_runtime_shim.ts"),
        main,
      ],
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
