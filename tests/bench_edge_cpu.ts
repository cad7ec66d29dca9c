/**
 * The CPU an Edge Function's isolates used during a benchmark section, as the stack's
 * gateway counts it (local-stack/supabase/edge_limits.ts): per isolate over its whole life,
 * boot included, the way the hosted Edge Runtime counts it against its 1,000 ms soft and
 * 2,000 ms hard limits (docs/interfaces.md, "Edge Function limits").
 *
 * Isolates that ended during the section are read from `.local/logs/edge-isolates.jsonl`
 * (lines appended after {@link markEdgeCpu}); isolates still alive at the end are read
 * from the gateway's `/_stack/health`, with the CPU they have used so far.
 *
 * @module
 */

import {
  isolateLinesSince,
  isolateLogOffset,
  wasKilled,
} from "../local-stack/supabase/isolate_log.ts";
import { liveIsolates } from "./stack_clients.ts";

/** Where a section started: the isolate log's length and the isolates then alive. */
export interface EdgeCpuMark {
  logBytes: number;
  alive: Set<string>;
}

/** The isolates of one function during a section. */
export interface EdgeCpu {
  /** CPU milliseconds of each isolate (ended or alive), in the order seen. */
  cpuMs: number[];
  /** Isolates killed at a hard limit (`CPUTime`, `WallClockTime`, `Memory`). */
  killed: number;
  requests: number;
}

/** Marks the start of a section. */
export async function markEdgeCpu(): Promise<EdgeCpuMark> {
  const alive = new Set<string>();
  for (const [name, isolates] of await liveIsolates()) {
    for (const i of isolates) alive.add(`${name}#${i.id}`);
  }
  return { logBytes: isolateLogOffset(), alive };
}

/**
 * The isolates of `fn` that started since `mark` (an isolate alive at the mark is left
 * out: part of its CPU belongs to an earlier section).
 */
export async function edgeCpuSince(mark: EdgeCpuMark, fn: string): Promise<EdgeCpu> {
  const result: EdgeCpu = { cpuMs: [], killed: 0, requests: 0 };
  for (const ended of isolateLinesSince(mark.logBytes)) {
    if (ended.function !== fn || mark.alive.has(`${fn}#${ended.isolate}`)) continue;
    result.cpuMs.push(ended.cpu_ms);
    result.requests += ended.requests;
    if (wasKilled(ended)) result.killed++;
  }
  for (const i of (await liveIsolates()).get(fn) ?? []) {
    if (mark.alive.has(`${fn}#${i.id}`)) continue;
    result.cpuMs.push(i.cpu_ms);
    result.requests += i.requests;
  }
  return result;
}

/** The `p`th percentile (nearest rank) of the values; 0 for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The hosted soft CPU limit per isolate, in ms (docs/interfaces.md). */
const SOFT_CPU_MS = 1_000;

/**
 * Prints the CPU figures of a function's isolates: per isolate (p50, max, and max against
 * the soft limit), per page of the Scan (all isolates' CPU over the pages they read), and
 * how many isolates were killed at a hard limit.
 */
export function printEdgeCpu(
  prefix: string,
  cpu: EdgeCpu,
  pages: number,
  figure: (name: string, value: number, digits?: number) => void,
): void {
  const total = cpu.cpuMs.reduce((sum, ms) => sum + ms, 0);
  figure(`${prefix}_isolates`, cpu.cpuMs.length, 0);
  figure(`${prefix}_requests`, cpu.requests, 0);
  figure(`${prefix}_cpu_ms_per_isolate_p50`, percentile(cpu.cpuMs, 50), 0);
  figure(`${prefix}_cpu_ms_per_isolate_max`, percentile(cpu.cpuMs, 100), 0);
  figure(`${prefix}_cpu_max_vs_soft_limit`, percentile(cpu.cpuMs, 100) / SOFT_CPU_MS, 2);
  figure(`${prefix}_pages`, pages, 0);
  figure(`${prefix}_cpu_ms_per_page`, pages > 0 ? total / pages : 0, 1);
  figure(`${prefix}_isolates_killed`, cpu.killed, 0);
}
