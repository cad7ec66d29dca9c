/**
 * When an isolate's shim (edge_runtime_shim.ts) looks at its own memory and writes a
 * report for the gateway: as hosted looks, when JavaScript has run, never on a clock of
 * its own while nothing runs.
 *
 * The hosted Edge Runtime checks a user worker's memory (V8's used heap plus external
 * memory, `MemCheck::check` in crates/base/src/runtime/mod.rs of supabase/edge-runtime)
 * after every turn of its event loop and in a prologue callback of every garbage
 * collection: an isolate that runs nothing is never looked at, and needs not be, as its
 * memory cannot change. This stand-in cannot hook the event loop's turns, so it looks
 * every {@link MEMORY_REPORT_MS} while the isolate is busy (a request being handled until
 * its response's body is sent, a `waitUntil` promise pending, or within
 * {@link BUSY_TAIL_MS} of either ending), right after each timer of the function's own
 * (the global `setTimeout` and `setInterval`, which npm packages such as postgres.js use
 * too) and once more a look later, and after every garbage collection at any time (V8
 * collects as the heap grows, and as external memory grows: ArrayBuffers). What it still
 * cannot see at once is growth in JavaScript woken otherwise, outside any request or
 * `waitUntil`: I/O alone (a socket's callback of a connection kept open, a WebSocket's
 * messages), `setImmediate`, and timers taken from `node:timers` or
 * `node:timers/promises` by name, none of which the functions use: that is seen at the
 * next collection. A change of the pending `waitUntil` count is written at the next look,
 * within {@link MEMORY_REPORT_MS}.
 *
 * An idle isolate used to wake 40 times a second for this: about 14 ms of CPU a second,
 * which over its minute of idleness before it is drained was most of the CPU an isolate
 * used in `npm test`, and counted against its own CPU limit.
 *
 * @module
 */

import { MEMORY_REPORT_MS, memoryReportLine } from "./edge_limits.ts";

/** How long after its last request or `waitUntil` ends an isolate still counts as busy. */
export const BUSY_TAIL_MS = 1_000;

/** What the watch needs: its clock and timers, the isolate's memory, and where to write. */
export interface MemoryWatchDeps {
  /** MB of V8's used heap plus external memory. */
  memoryMb(): number;
  /** The `waitUntil` promises not yet settled. */
  pendingTasks(): number;
  /** Writes one report line (to stderr, where the gateway reads it). */
  write(line: string): void;
  now(): number;
  /** Calls `fn` every `ms` until the function it answers is called. */
  every(fn: () => void, ms: number): () => void;
  /** Calls `fn` once, `ms` from now. */
  after(fn: () => void, ms: number): void;
}

/** The shim's memory reports: looked at while busy, after every GC, and on a change. */
export class MemoryWatch {
  #deps: MemoryWatchDeps;
  #reported = "";
  #requests = 0;
  #idleSince = 0;
  #stop: (() => void) | undefined;
  #lookAgain = false;

  constructor(deps: MemoryWatchDeps) {
    this.#deps = deps;
    this.#idleSince = deps.now();
    this.report();
  }

  /** Writes a report when memory or the pending count differs from the last one written. */
  report(): void {
    const line = memoryReportLine({
      memoryMb: this.#deps.memoryMb(),
      pendingTasks: this.#deps.pendingTasks(),
    });
    if (line === this.#reported) return;
    this.#reported = line;
    this.#deps.write(line);
  }

  /** A request's handler started; call the function it answers once it has settled. */
  requestStarted(): () => void {
    this.#requests++;
    this.#busy();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#requests--;
      this.#idleSince = this.#deps.now();
    };
  }

  /**
   * A `waitUntil` promise was added or settled: busy while any is pending, reported at
   * the next look (written at each change, a request's every start and end cost the
   * isolate and the gateway a line each: half the webhook's rate at batches of 10).
   */
  tasksChanged(): void {
    this.#busy();
    if (this.#deps.pendingTasks() === 0) this.#idleSince = this.#deps.now();
  }

  /**
   * A timer of the function's own ran (edge_runtime_shim.ts wraps `setTimeout` and
   * `setInterval`): looked at now, and once more {@link MEMORY_REPORT_MS} later for what
   * its promises went on to do. Not the busy tail: an interval of a few hundred
   * milliseconds would keep the isolate looked at 40 times a second for ever (90 ms of
   * CPU in 10 s against 10 ms, counted against its own CPU limit), where hosted's look
   * after each turn of the event loop costs next to nothing.
   */
  timerRan(): void {
    this.report();
    if (this.#lookAgain) return;
    this.#lookAgain = true;
    this.#deps.after(() => {
      this.#lookAgain = false;
      this.report();
    }, MEMORY_REPORT_MS);
  }

  /** A garbage collection ran: memory may have grown (or shrunk) whatever the isolate did. */
  collected(): void {
    this.report();
  }

  /** Whether the isolate's memory is being looked at on the clock. */
  get watching(): boolean {
    return this.#stop !== undefined;
  }

  #busy(): void {
    this.#stop ??= this.#deps.every(() => this.#tick(), MEMORY_REPORT_MS);
  }

  #tick(): void {
    this.report();
    const idle = this.#requests === 0 && this.#deps.pendingTasks() === 0;
    if (idle && this.#deps.now() - this.#idleSince >= BUSY_TAIL_MS) {
      this.#stop?.();
      this.#stop = undefined;
    }
  }
}

/** The registries of {@link afterEachCollection}: a registry collected calls nobody back. */
const registries = new Set<FinalizationRegistry<number>>();

/**
 * Calls `onCollected` after garbage collections: an object only a FinalizationRegistry
 * knows is collected by the next collection that clears weak references (a full one
 * always; V8 runs the callbacks as a task soon after), and its callback arms another.
 * Hosted's check runs in every collection's prologue; this one may miss a minor
 * collection, but not the full ones that a growing heap or growing external memory
 * brings.
 */
export function afterEachCollection(onCollected: () => void): void {
  const registry = new FinalizationRegistry<number>(() => {
    arm();
    onCollected();
  });
  registries.add(registry);
  const arm = () => registry.register({}, 0);
  arm();
}
