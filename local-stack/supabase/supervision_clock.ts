/**
 * When the local gateway's supervisor next reads its isolates (isolate_process.ts,
 * `supervise`): every {@link EdgeLimits.pollMs} while one is busy, as it always did, but
 * an idle isolate only when one of its limits could first be reached, never later than
 * a reading every `pollMs` would have seen it.
 *
 * An idle isolate (no request in flight, no `waitUntil` pending, not retired) can reach
 * its soft or hard CPU limit no sooner than the CPU left divided by the cores its counted
 * CPU can run on (one: the gateway counts the isolate's main thread, edge_limits.ts), and
 * its wall-clock and idle deadlines are known. So it is read
 * at the first moment any of them could be passed, then again as that nears, each reading
 * at least `pollMs` after the last: a retirement or a kill is within `pollMs` of its limit,
 * as before. Half the soft limit (a successor's start) matters only when a request is
 * routed to the pool: the gateway reads the pool's isolates before it routes one
 * (functions_gateway.ts).
 * Its memory is read as the isolate reports it (a report, a request begun or ended:
 * {@link SupervisionClock.poke}). Reading every isolate every 25 ms had cost each gateway
 * about 15 ms of CPU a second, with no isolate doing anything.
 *
 * @module
 */

import type { EdgeLimits } from "./edge_limits.ts";
import type { Isolate } from "./edge_isolates.ts";

/** What of an isolate the schedule looks at. */
export type ScheduledIsolate =
  & Pick<
    Isolate,
    "cpuMs" | "startedAt" | "lastActivity" | "inFlight" | "retired" | "killed"
  >
  & {
    /** Its `waitUntil` promises not yet settled, undefined before its first report. */
    pendingTasks: number | undefined;
  };

/** How long until `isolate` must be read again, at `now` (at least `limits.pollMs`). */
export function readingDueIn(
  isolate: ScheduledIsolate,
  now: number,
  limits: EdgeLimits,
  cores: number,
): number {
  const busy = isolate.inFlight > 0 || isolate.pendingTasks !== 0 ||
    isolate.retired !== undefined;
  if (busy || isolate.killed) return limits.pollMs;
  const ages = [limits.wallClockMs, limits.wallClockMs / 2];
  const cpuLimits = [limits.cpuHardMs, limits.cpuSoftMs].filter((t) => t > isolate.cpuMs);
  const waits = [
    ...cpuLimits.map((t) => (t - isolate.cpuMs) / cores),
    ...ages.map((age) => isolate.startedAt + age - now),
    ...(limits.idleMs > 0 ? [isolate.lastActivity + limits.idleMs - now] : []),
  ];
  return Math.max(limits.pollMs, Math.min(...waits));
}

/** What the clock needs: fakes in the tests. */
export interface ClockDeps {
  now(): number;
  /** Calls `fn` in `ms`, unless the function it answers is called first. */
  after(fn: () => void, ms: number): () => void;
}

/**
 * Runs the supervisor's pass when it is due: `pass` answers how long until it is needed
 * again (undefined: not until {@link poke}).
 */
export class SupervisionClock {
  #cancel: (() => void) | undefined;
  #dueAt = Infinity;
  #stopped = false;

  constructor(
    readonly pass: () => number | undefined,
    readonly pollMs: number,
    readonly deps: ClockDeps,
  ) {}

  /** Something changed (a request, a report, an isolate started): a pass within `pollMs`. */
  poke(): void {
    this.#within(this.pollMs);
  }

  /** No more passes. */
  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #within(ms: number): void {
    if (this.#stopped) return;
    const at = this.deps.now() + ms;
    if (at >= this.#dueAt) return;
    this.#cancel?.();
    this.#dueAt = at;
    this.#cancel = this.deps.after(() => this.#run(), ms);
  }

  #run(): void {
    this.#cancel = undefined;
    this.#dueAt = Infinity;
    const next = this.pass();
    if (next !== undefined) this.#within(next);
  }
}
