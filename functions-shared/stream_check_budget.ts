/**
 * What a `stream-check` run may spend, and what its reads cost (docs/interfaces.md,
 * "stream-check"). On the hosted runtime the isolate's CPU cannot be read, and the
 * estimating meter (cpu_meter.ts) sees no step of a stream's read, so each read is
 * charged what it was measured to cost, on the safe side.
 *
 * Measured on the local stack through the gateway's count of the isolate's process (its
 * real CPU), per GetRecords page with the lookup of its records in the webhook's notes:
 * pages of about 500 visitors records (1 MB) 20-42 ms, pages of 1,000 actions records
 * (0.6 MB) 14-29 ms, an empty page 1-2 ms. A page is charged {@link pageCpuMs}: 45 and
 * 43 ms for those, 5 for an empty one. A table is charged {@link TABLE_CPU_MS} for its
 * other requests and statements (DescribeTable, DescribeStream, the previous run, the
 * record of this one), a shard {@link SHARD_CPU_MS} for its GetShardIterator.
 *
 * A run stops reading once it has used `runCpuMs` from its start, or its wall budget, or
 * once the isolate's count reaches {@link ISOLATE_CPU_CEILING_MS} (two runs may share an
 * isolate): the runtime retires an isolate at its 1,000 ms soft limit, so a run on one
 * not yet retired ends under the 2,000 ms hard limit. Every run reads at least one page
 * of its first table, whatever its budget, so that every run makes progress.
 *
 * @module
 */

import { type CpuMeter, inMeterTerms } from "./cpu_meter.ts";
import type { ReadBudget } from "./stream_shard.ts";

/** What every page is charged, empty or not. */
export const PAGE_BASE_CPU_MS = 5;
/** What each record of a page is charged besides. */
export const RECORD_CPU_MS = 0.02;
/** What each MiB of a page's records is charged besides. */
export const MIB_CPU_MS = 30;
/** A table's requests and statements besides its pages. */
export const TABLE_CPU_MS = 15;
/** A shard's GetShardIterator. */
export const SHARD_CPU_MS = 3;
/** The isolate's count at which no run reads further, whatever its own allowance. */
export const ISOLATE_CPU_CEILING_MS = 1_500;

/** What a page of `records` records of `bytes` bytes is charged. */
export function pageCpuMs(records: number, bytes: number): number {
  return PAGE_BASE_CPU_MS + RECORD_CPU_MS * records + MIB_CPU_MS * bytes / 1_048_576;
}

/** A run's limits: CPU from its start (by the meter) and wall time. */
export interface RunLimits {
  runCpuMs: number;
  wallMs: number;
}

/** A run's budget: its reads' charges, and whether it may go on. */
export interface RunBudget extends ReadBudget {
  /** Counts a table's requests and statements besides its pages. */
  table(): void;
  /** Whether a table may start: the first always may. */
  tableMayStart(): boolean;
}

/** The budget of a run starting now. */
export function runBudget(cpu: CpuMeter, limits: RunLimits, now: () => number): RunBudget {
  const cpuAtStart = cpu.usedMs();
  const started = now();
  let pages = 0;
  let tables = 0;
  const over = () => {
    const used = cpu.usedMs();
    return used - cpuAtStart >= limits.runCpuMs ||
      used >= inMeterTerms(cpu, ISOLATE_CPU_CEILING_MS) ||
      now() - started >= limits.wallMs;
  };
  return {
    page(records, bytes) {
      pages++;
      cpu.charge(pageCpuMs(records, bytes));
    },
    shard: () => cpu.charge(SHARD_CPU_MS),
    spent: () => pages > 0 && over(),
    table() {
      tables++;
      cpu.charge(TABLE_CPU_MS);
    },
    tableMayStart: () => tables === 0 || !over(),
  };
}
