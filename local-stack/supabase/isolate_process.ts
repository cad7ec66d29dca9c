/**
 * The processes behind the local gateway's isolates (edge_isolates.ts): how one is
 * started (a Deno process with the edge_runtime_shim.ts preloaded, on a port of its own),
 * signalled and killed, and the supervisor's loop that reads each one's CPU and memory
 * and applies the limits (edge_limits.ts).
 *
 * @module
 */

import { join } from "node:path";
import { DENO_BIN, HOST, ROOT } from "../config.ts";
import { portOpen, sleep } from "../processes.ts";
import type { IsolatePool, IsolateProcess } from "./edge_isolates.ts";
import { FUNCTION_NAME_ENV, GATEWAY_PID_ENV } from "./function_calls.ts";
import { LogLimits } from "./log_limits.ts";
import { readingDueIn } from "./supervision_clock.ts";
import {
  DRAIN_SIGNAL,
  type EdgeLimits,
  judge,
  memoryAlert,
  type MemoryReport,
  nearsRetirement,
  parseMemoryReport,
  readProcStat,
  RETIRE_SIGNALS,
} from "./edge_limits.ts";

/**
 * A line of an isolate's output as the functions' log keeps it: the time it was read and
 * the isolate's name before it, as the hosted log explorer shows each event with its
 * time and function (a run's pages and hand-ons can then be timed from the log alone).
 */
export function logLine(name: string, line: string, at: Date = new Date()): string {
  return `${at.toISOString()} [${name}] ${line}`;
}

/** What the hosted log would keep of the functions' lines, across their isolates. */
const logLimits = new LogLimits();

/**
 * Copies an isolate's output into ours, each line prefixed with its time and the isolate's
 * name ({@link logLine}) and marked where the hosted log would not keep it
 * (log_limits.ts); calls `onLine` with every line first (to notice V8 running out of
 * heap, to read memory reports), and leaves out those it answers true for.
 */
async function relay(
  fn: string,
  name: string,
  stream: ReadableStream<Uint8Array>,
  out: typeof console.log,
  onLine: (line: string) => boolean = () => false,
) {
  let buffered = "";
  const print = (line: string) => out(logLine(name, logLimits.mark(fn, line)));
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (!onLine(line)) print(line);
    }
  }
  if (buffered && !onLine(buffered)) print(buffered);
}

/** A loopback port nobody listens on (the OS picks it). */
function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** What an isolate is made of. */
export interface IsolateSpec {
  /** The function's name, for log lines. */
  name: string;
  /** Its folder: `index.ts` and `deno.json`. */
  dir: string;
  /** Its pool, told when the isolate ends. */
  pool: IsolatePool;
  /** Its environment, given the port it is to listen on. */
  env: (port: number) => Record<string, string>;
  /** V8's heap limit. */
  memoryMb: number;
  /** Called at each memory report the isolate writes (the supervisor looks at it then). */
  reported?(): void;
}

/** Starts an isolate of a function: a Deno process on a port of its own. */
export function spawnIsolate(fn: IsolateSpec, id: number): IsolateProcess {
  const port = freePort();
  const child = new Deno.Command(DENO_BIN, {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      // As a hosted user worker: files of its bundle and /tmp only, and of the system its
      // host name only (supabase/edge-runtime, crates/base/src/runtime/permissions.rs).
      `--allow-read=${fn.dir},${join(ROOT, "functions-shared")},/tmp`,
      "--allow-sys=hostname",
      "--no-prompt",
      "--config",
      join(fn.dir, "deno.json"),
      // The whole heap, young generation included, as hosted limits it
      // (supabase/edge-runtime, crates/base/src/runtime/mod.rs: `heap_limits(0, limit)`).
      `--v8-flags=--max-heap-size=${fn.memoryMb}`,
      "--preload",
      join(ROOT, "local-stack", "supabase", "edge_runtime_shim.ts"),
      join(fn.dir, "index.ts"),
    ],
    env: { ...fn.env(port), [FUNCTION_NAME_ENV]: fn.name, [GATEWAY_PID_ENV]: String(Deno.pid) },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const label = `${fn.name}#${id}`;
  let outOfMemory = false;
  let memory: MemoryReport | undefined;
  const peaks = memoryPeaks();
  relay(fn.name, label, child.stdout, console.log);
  const stderrRead = relay(fn.name, label, child.stderr, console.error, (line) => {
    const report = parseMemoryReport(line);
    if (report) {
      memory = report;
      peaks.report(report.memoryMb);
      fn.reported?.();
      return true;
    }
    if (/out of memory/i.test(line)) outOfMemory = true;
    return false;
  });
  let exited = false;
  const status = child.status.then(async (status) => {
    exited = true;
    // Its last words (V8's "out of memory") may still be on their way through the pipe:
    // read to their end (or half a second), or a heap overflow would pass for a crash.
    await Promise.race([stderrRead.catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
    const isolate = fn.pool.live().find((i) => i.process.pid === child.pid);
    // Retired or not: an isolate retired at its soft CPU limit still runs its requests, and
    // one that then overflows its heap is killed for memory (a busy machine's boot and
    // allocation passed 1,000 ms of CPU first, and the request was answered 500).
    if (isolate && !isolate.killed && outOfMemory) isolate.killed = "Memory";
    console.error(
      logLine("gateway", `${label} (pid ${child.pid}) exited with code ${status.code}`),
    );
    if (isolate) fn.pool.ended(isolate, status.code);
    return status.code;
  });
  const signal = (name: Deno.Signal) => {
    try {
      if (!exited) child.kill(name);
    } catch { /* it has just exited */ }
  };
  return {
    pid: child.pid,
    port,
    ready: (async () => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !exited) {
        if (await portOpen(HOST, port)) return true;
        await sleep(25);
      }
      return false;
    })(),
    exited: status,
    drain: () => signal(DRAIN_SIGNAL),
    memory: () => memory,
    memoryPeak: peaks.peak,
    kill: () => signal("SIGKILL"),
    signal,
  };
}

/**
 * An isolate's memory reports as the supervisor reads them: `peak` answers the most any
 * report gave since its last call (the last report's when none came since), so that a
 * peak between two looks is not lost to a lower report after it.
 */
export function memoryPeaks(): { report(mb: number): void; peak(): number } {
  let last = 0;
  let most = 0;
  return {
    report(mb) {
      last = mb;
      most = Math.max(most, mb);
    },
    peak() {
      const peak = most;
      most = last;
      return peak;
    },
  };
}

/**
 * How fast an isolate's counted CPU can grow (see {@link supervise}): one core, the
 * gateway counting its main thread alone (edge_limits.ts, `readProcStat`).
 */
const COUNTED_CORES = 1;

/**
 * Reads every live isolate's CPU (its main thread's) and memory
 * (/proc/<pid>/task/<pid>/stat) and applies the supervisor's verdict (edge_limits.ts);
 * drains the idle ones. Answers how long until an isolate must be read again
 * (supervision_clock.ts), undefined when none is live.
 *
 * `cores` bounds how fast an isolate's counted CPU can grow: one thread's, one core. More
 * cores than that only read it sooner.
 */
export function supervise(
  pools: Iterable<IsolatePool>,
  limits: EdgeLimits,
  cores = COUNTED_CORES,
): number | undefined {
  const now = Date.now();
  let due: number | undefined;
  const next = (ms: number) => due = Math.min(due ?? ms, ms);
  for (const pool of pools) {
    for (const isolate of [...pool.live()]) {
      if (isolate.killed) continue;
      const stat = readProcStat(isolate.process.pid);
      if (!stat) continue;
      isolate.cpuMs = stat.cpuMs;
      const memory = isolate.process.memory?.();
      const reading = {
        cpuMs: stat.cpuMs,
        wallMs: now - isolate.startedAt,
        memoryMb: isolate.process.memoryPeak?.() ?? memory?.memoryMb ?? 0,
      };
      const verdict = judge(reading, limits, isolate.retired !== undefined);
      if (verdict.action === "kill") {
        console.error(logLine(
          "gateway",
          `${pool.functionName}#${isolate.id} killed: ${verdict.reason} (${
            Math.round(stat.cpuMs)
          } ms CPU, ${now - isolate.startedAt} ms old, ${
            Math.round(reading.memoryMb)
          } MB of heap and external memory, ${Math.round(stat.rssMb)} MB resident)`,
        ));
        pool.kill(isolate, verdict.reason);
        continue;
      } else if (verdict.action === "retire") {
        pool.retire(isolate, verdict.reason);
        isolate.process.signal?.(RETIRE_SIGNALS[verdict.reason].signal);
      }
      // Past half its memory, an isolate still takes requests, and is dropped once it has
      // none in flight and no `waitUntil` pending (edge_limits.ts, `memoryAlert`).
      if (
        memoryAlert(reading, limits) && isolate.inFlight === 0 && memory?.pendingTasks === 0
      ) {
        pool.retire(isolate, "early drop: memory");
      }
      if (
        !isolate.retired && !isolate.successor && isolate.requests > 0 &&
        nearsRetirement(reading, limits)
      ) {
        pool.prepareSuccessor();
      }
    }
    pool.retireIdle(limits.idleMs);
    for (const isolate of pool.live()) {
      const pendingTasks = isolate.process.memory?.()?.pendingTasks;
      next(readingDueIn({ ...isolate, pendingTasks }, now, limits, cores));
    }
  }
  return due;
}
