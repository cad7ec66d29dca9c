/**
 * The hosted Edge Runtime's resource limits, and the decisions its supervisor takes on
 * them, for the local functions gateway (functions_gateway.ts). Pure: the gateway feeds
 * it readings (CPU, wall clock, memory) and it answers what to do.
 *
 * What the hosted runtime does, from the source of supabase/edge-runtime (the `per_worker`
 * policy, crates/base/src/worker/supervisor/strategy_per_worker.rs):
 * - CPU time is counted per isolate, not per request: the CPU the isolate's thread used
 *   while it evaluated the module and ran its event loop, summed over every request and
 *   background task it served (crates/base/src/runtime/mod.rs, `with_cpu_metrics_guard`
 *   around `mod_evaluate`, `get_cpu_metrics_guard` around each poll of the event loop).
 * - At the soft limit (`SUPABASE_RESOURCE_LIMIT_CPU_SOFT_MS`, 1000 in .cargo/config.toml)
 *   the isolate is retired (`early_retire_fn`): it takes no new request, finishes what it
 *   has (in-flight requests and `EdgeRuntime.waitUntil` promises), then is dropped.
 * - At the hard limit (`SUPABASE_RESOURCE_LIMIT_CPU_HARD_MS`, 2000) it is terminated with
 *   `ShutdownReason::CPUTime`; its in-flight requests answer 546 (gateway_errors.ts).
 * - Wall clock (`worker_timeout_ms`; 400000 in .cargo/config.toml, 150 s on the Free plan
 *   and 400 s on paid plans per Supabase's limits page): retired at half, terminated with
 *   `WallClockTime` at the limit.
 * - Memory (`SUPABASE_RESOURCE_LIMIT_MEM_MB`, 256): the V8 heap's used size plus its
 *   external memory (ArrayBuffers), read after every poll of the event loop
 *   (crates/base/src/runtime/mod.rs, `MemCheck::check`). At half the isolate has a
 *   "resource alert" (`mem_reached_half`, lowered again when memory falls): it is not
 *   retired, and takes new requests as before (crates/base/src/worker/pool.rs,
 *   `maybe_active_worker` skips retired workers only), but once every request is answered
 *   and every `waitUntil` promise settled it is dropped early (`can_early_drop`,
 *   strategy_per_worker.rs). At the limit it is terminated with `Memory`.
 *
 * Locally an isolate is a Deno process. CPU is the user + system time of its main thread,
 * where Deno runs the module and its event loop, as hosted counts the worker's own thread
 * (a per-thread `CLOCK_THREAD_CPUTIME_ID` timer: crates/cpu_timer/src/lib.rs, `CPUTimer::new`
 * and `get_thread_time`): V8's GC and compiler threads count neither here nor there. Its
 * boot counts in full (Deno reads and transpiles the modules on that thread, where hosted
 * evaluates a bundle already built), so the local count is never the kinder. Memory is what the
 * isolate reports of itself, as hosted counts it: the shim writes its heap's used size
 * plus external memory, and its pending `waitUntil` promises, to stderr when they change
 * ({@link memoryReportLine}), looking every {@link MEMORY_REPORT_MS} while the isolate is
 * busy and after garbage collections (memory_watch.ts); the gateway takes those lines out
 * of the log. Sampled, not checked after every poll: a peak shorter than that is not seen.
 *
 * @module
 */

import { statFields } from "../proc_table.ts";

/** The limits the gateway enforces; read once, at its start. */
export interface EdgeLimits {
  /** CPU of the isolate at which it is retired (EDGE_CPU_SOFT_MS, 1000). */
  cpuSoftMs: number;
  /** CPU of the isolate at which it is killed, reason `CPUTime` (EDGE_CPU_HARD_MS, 2000). */
  cpuHardMs: number;
  /** Age at which the isolate is killed, reason `WallClockTime`; retired at half. */
  wallClockMs: number;
  /**
   * Memory at which it is killed, reason `Memory`; at half it is dropped once idle
   * (EDGE_MEMORY_MB, 256).
   */
  memoryMb: number;
  /** An isolate with no request for this long is drained, reason `idle`; 0: never. */
  idleMs: number;
  /** How often the gateway reads every isolate's CPU and memory (EDGE_POLL_MS). */
  pollMs: number;
  /**
   * Calls between functions a request chain may make a minute (EDGE_CALLS_PER_MINUTE,
   * 5000: hosted's documented floor; function_calls.ts); 0 refuses every one.
   */
  callsPerMinute: number;
}

/** The settings: environment variable, default (as hosted, Free plan), bounds. */
const SETTINGS: Record<keyof EdgeLimits, [string, number, number, number]> = {
  cpuSoftMs: ["EDGE_CPU_SOFT_MS", 1_000, 1, 3_600_000],
  cpuHardMs: ["EDGE_CPU_HARD_MS", 2_000, 1, 3_600_000],
  wallClockMs: ["EDGE_WALL_CLOCK_LIMIT_MS", 150_000, 100, 3_600_000],
  memoryMb: ["EDGE_MEMORY_MB", 256, 16, 16_384],
  idleMs: ["EDGE_IDLE_MS", 60_000, 0, 3_600_000],
  pollMs: ["EDGE_POLL_MS", 25, 5, 1_000],
  callsPerMinute: ["EDGE_CALLS_PER_MINUTE", 5_000, 0, 1_000_000],
};

/**
 * Reads the limits from `values` (the gateway passes its environment over
 * `.local/stack.env`); unset means the hosted default. Throws one error naming every bad
 * value.
 */
export function readEdgeLimits(values: Record<string, string | undefined>): EdgeLimits {
  const limits = {} as EdgeLimits;
  const problems: string[] = [];
  for (const [key, [name, fallback, min, max]] of Object.entries(SETTINGS)) {
    const text = values[name]?.trim();
    if (!text) {
      limits[key as keyof EdgeLimits] = fallback;
      continue;
    }
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      problems.push(
        `${name} is ${JSON.stringify(text)}; it must be a whole number from ${min} to ${max}`,
      );
    } else {
      limits[key as keyof EdgeLimits] = value;
    }
  }
  if (problems.length === 0 && limits.cpuSoftMs > limits.cpuHardMs) {
    problems.push(
      `EDGE_CPU_SOFT_MS (${limits.cpuSoftMs}) is above EDGE_CPU_HARD_MS (${limits.cpuHardMs})`,
    );
  }
  if (problems.length > 0) throw new Error(`functions gateway: bad limits: ${problems.join("; ")}`);
  return limits;
}

/** Why an isolate is killed: the hosted `ShutdownReason`s. */
export type KillReason = "CPUTime" | "WallClockTime" | "Memory";
/**
 * Why an isolate is retired (takes nothing new, ends when its work ends): a soft limit,
 * or dropped early, idle with its memory alert raised ({@link memoryAlert}).
 */
export type RetireReason = "retired: cpu soft limit" | "retired: wall clock" | "early drop: memory";

/**
 * How the gateway tells an isolate why it was retired (local-stack/supabase/edge_runtime_shim.ts):
 * the signal it sends, and the `reason` of the `beforeunload` the shim then dispatches (the
 * hosted runtime's snake_case `WillTerminateReason`, crates/base/src/runtime/mod.rs of
 * supabase/edge-runtime). Not SIGUSR1: on SIGUSR1 Deno opens a V8 inspector on
 * 127.0.0.1:9229 ("Debugger listening on ws://…"), which any local process could attach
 * to and run code in an isolate that holds the service role key.
 */
export const RETIRE_SIGNALS: Record<
  Exclude<RetireReason, "early drop: memory">,
  { signal: Deno.Signal; unload: string }
> = {
  "retired: cpu soft limit": { signal: "SIGXCPU", unload: "cpu" },
  "retired: wall clock": { signal: "SIGHUP", unload: "wall_clock" },
};

/**
 * How the gateway tells an idle retired isolate to drain (edge_runtime_shim.ts): it takes
 * nothing new and has no request in flight, so it ends once its `waitUntil` work is done.
 */
export const DRAIN_SIGNAL: Deno.Signal = "SIGUSR2";

/** One reading of an isolate. */
export interface IsolateReading {
  /** CPU the isolate's process has used since it started, boot included. */
  cpuMs: number;
  /** Time since it started. */
  wallMs: number;
  /** Its V8 heap's used size plus external memory, as it last reported (0 before). */
  memoryMb: number;
}

/** How often a busy isolate's shim looks at its memory (the gateway reads /proc as often). */
export const MEMORY_REPORT_MS = 25;

/** How a memory report's line starts: no function prints it. */
const MEMORY_REPORT_PREFIX = "\u0001edge-runtime-memory ";

/** An isolate's memory report: MB of heap used plus external memory, pending `waitUntil`s. */
export interface MemoryReport {
  memoryMb: number;
  pendingTasks: number;
}

/** The line an isolate's shim writes to stderr for a memory report. */
export function memoryReportLine(report: MemoryReport): string {
  return `${MEMORY_REPORT_PREFIX}${report.memoryMb.toFixed(1)} ${report.pendingTasks}`;
}

/** The memory report a line of an isolate's stderr holds, or undefined for any other line. */
export function parseMemoryReport(line: string): MemoryReport | undefined {
  if (!line.startsWith(MEMORY_REPORT_PREFIX)) return undefined;
  const [memoryMb, pendingTasks] = line.slice(MEMORY_REPORT_PREFIX.length).split(" ").map(Number);
  if (!Number.isFinite(memoryMb) || !Number.isInteger(pendingTasks)) return undefined;
  return { memoryMb, pendingTasks };
}

/** What the supervisor decides for one reading. */
export type Verdict =
  | { action: "none" }
  | { action: "retire"; reason: keyof typeof RETIRE_SIGNALS }
  | { action: "kill"; reason: KillReason };

/**
 * The supervisor's decision for an isolate (strategy_per_worker.rs): the hard limits
 * first (kill), then, for an isolate not yet retired, the soft ones (retire).
 */
export function judge(reading: IsolateReading, limits: EdgeLimits, retired: boolean): Verdict {
  if (reading.cpuMs >= limits.cpuHardMs) return { action: "kill", reason: "CPUTime" };
  if (reading.memoryMb >= limits.memoryMb) return { action: "kill", reason: "Memory" };
  if (reading.wallMs >= limits.wallClockMs) return { action: "kill", reason: "WallClockTime" };
  if (retired) return { action: "none" };
  if (reading.cpuMs >= limits.cpuSoftMs) {
    return { action: "retire", reason: "retired: cpu soft limit" };
  }
  if (reading.wallMs >= limits.wallClockMs / 2) {
    return { action: "retire", reason: "retired: wall clock" };
  }
  return { action: "none" };
}

/**
 * Whether an isolate has the hosted supervisor's memory alert: half of its limit used.
 * It is not retired for it, but dropped once it has no request in flight and no pending
 * `waitUntil` (isolate_process.ts, `supervise`).
 */
export function memoryAlert(reading: IsolateReading, limits: EdgeLimits): boolean {
  return reading.memoryMb >= limits.memoryMb / 2;
}

/**
 * Whether an isolate not yet retired has used half of its soft CPU limit: the time to
 * start its successor (edge_isolates.ts). Not the wall clock: a successor started ahead
 * ages while it waits, and would itself be retired by the wall clock the sooner.
 */
export function nearsRetirement(reading: IsolateReading, limits: EdgeLimits): boolean {
  return reading.cpuMs >= limits.cpuSoftMs / 2;
}

/**
 * Reads the CPU of a process's main thread (user + system, boot included) and the
 * process's resident memory from /proc/<pid>/task/<pid>/stat (proc(5): a thread's line has
 * the process's fields, its times its own, its rss the process's); undefined once the
 * process is gone.
 */
export function readProcStat(
  pid: number,
  readText: (path: string) => string = (path) => Deno.readTextFileSync(path),
  ticksPerSecond = 100,
  pageBytes = 4096,
): { cpuMs: number; rssMb: number } | undefined {
  const fields = statFields(`/proc/${pid}/task/${pid}/stat`, readText);
  if (!fields) return undefined;
  // Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 here; rss (24) at 21.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssPages = Number(fields[21]);
  if (!Number.isFinite(ticks) || !Number.isFinite(rssPages)) return undefined;
  return { cpuMs: (ticks * 1000) / ticksPerSecond, rssMb: (rssPages * pageBytes) / 2 ** 20 };
}
