/**
 * The isolates of one Edge Function, with the hosted lifecycle (the `per_worker` policy of
 * supabase/edge-runtime, crates/base/src/worker/pool.rs and
 * supervisor/strategy_per_worker.rs): an isolate is started on demand, serves several
 * requests, is retired (takes nothing new; a new isolate takes the next requests) and
 * ends when its requests and background work are done, or is killed at a hard limit.
 * Every isolate that ends is reported once, as an {@link IsolateLine}.
 *
 * One thing differs, and not in the limits: the hosted runtime boots a worker from the
 * function's bundle in tens of milliseconds, while an isolate here is a Deno process
 * that takes 650-790 ms to listen on this machine (140-180 ms of it CPU). So that a
 * request does not wait for a boot production would not make it wait for, the supervisor
 * starts the next isolate as a *successor* once the current one has used half of its
 * soft CPU limit ({@link IsolatePool.prepareSuccessor}); it takes requests only when
 * the current one is retired, and its own boot counts in its own limits. One that is
 * never needed ends as `idle`.
 *
 * The processes themselves are made by the gateway (functions_gateway.ts) through
 * {@link PoolDeps.spawn}; this module only keeps the books and routes.
 *
 * @module
 */

import type { KillReason, MemoryReport, RetireReason } from "./edge_limits.ts";

/** A running isolate's process, as the gateway made it. */
export interface IsolateProcess {
  pid: number;
  port: number;
  /** Resolves true once it listens, false if it could not start. */
  ready: Promise<boolean>;
  /** Resolves with its exit code when it has ended. */
  exited: Promise<number>;
  /** Asks it to end once its background work is done (the shim's drain). */
  drain(): void;
  /** Ends it at once. */
  kill(): void;
  /** Sends it a signal (the shim's `beforeunload` on retirement). */
  signal?(name: Deno.Signal): void;
  /** Its last memory report (edge_limits.ts, `parseMemoryReport`), if it made one. */
  memory?(): MemoryReport | undefined;
  /**
   * The most memory its reports gave since the last call (the last report's, when none
   * came since): hosted checks memory at every allocation and turn, so a peak between two
   * of the supervisor's looks counts.
   */
  memoryPeak?(): number;
}

/** One line of `.local/logs/edge-isolates.jsonl`: an isolate that ended. */
export interface IsolateLine {
  function: string;
  isolate: number;
  pid: number;
  started_at: string;
  ended_at: string;
  requests: number;
  cpu_ms: number;
  wall_ms: number;
  /** A kill (`CPUTime`, `WallClockTime`, `Memory`), or why it ended otherwise. */
  reason: string;
}

/** What an isolate ended for, other than a kill. */
export type EndReason =
  | RetireReason
  | "idle"
  | "stopped"
  | "boot failed"
  | `exited with code ${number}`;

/** The books of one isolate. */
export interface Isolate {
  id: number;
  process: IsolateProcess;
  startedAt: number;
  lastActivity: number;
  requests: number;
  inFlight: number;
  /** The last CPU reading, for the log line. */
  cpuMs: number;
  /** Started ahead as the next isolate; takes requests once the current one retires. */
  successor: boolean;
  /** Set once it takes nothing new; why. */
  retired?: RetireReason | "idle" | "stopped" | "boot failed";
  /** Set when it was killed for a limit. */
  killed?: KillReason;
  ended: boolean;
  /** Whether the drain was sent. */
  draining: boolean;
}

/** What the pool needs. */
export interface PoolDeps {
  spawn(isolateId: number): IsolateProcess;
  now(): number;
  record(line: IsolateLine): void;
  /**
   * An isolate started, or a request was routed to one or ended: the supervisor looks at
   * the pool within its poll (supervision_clock.ts).
   */
  changed?(): void;
}

/** The isolates of one function. */
export class IsolatePool {
  #isolates: Isolate[] = [];
  #nextId = 1;

  constructor(readonly functionName: string, private readonly deps: PoolDeps) {}

  /** The isolates that have not ended. */
  live(): readonly Isolate[] {
    return this.#isolates;
  }

  /**
   * The isolate for a new request: the newest that is not retired, else the successor
   * started ahead, else a new one. The request is counted as in flight until
   * {@link release}.
   */
  acquire(): Isolate {
    const usable = (i: Isolate) => !i.retired && !i.killed;
    let isolate = this.#isolates.findLast((i) => usable(i) && !i.successor) ??
      this.#isolates.find((i) => usable(i) && i.successor);
    if (isolate) {
      isolate.successor = false;
    } else {
      isolate = this.#start(false);
    }
    isolate.requests++;
    isolate.inFlight++;
    isolate.lastActivity = this.deps.now();
    this.deps.changed?.();
    return isolate;
  }

  /**
   * Starts the isolate that takes the requests once the current one retires, unless one
   * is waiting already (see the module's doc).
   */
  prepareSuccessor(): void {
    if (this.#isolates.some((i) => i.successor && !i.retired && !i.killed)) return;
    this.#start(true);
  }

  #start(successor: boolean): Isolate {
    const id = this.#nextId++;
    const now = this.deps.now();
    const isolate: Isolate = {
      id,
      process: this.deps.spawn(id),
      startedAt: now,
      lastActivity: now,
      requests: 0,
      inFlight: 0,
      cpuMs: 0,
      successor,
      ended: false,
      draining: false,
    };
    this.#isolates.push(isolate);
    this.deps.changed?.();
    return isolate;
  }

  /** A request's response has ended (or failed). */
  release(isolate: Isolate): void {
    isolate.inFlight = Math.max(0, isolate.inFlight - 1);
    isolate.lastActivity = this.deps.now();
    this.#drainIfDone(isolate);
    this.deps.changed?.();
  }

  /** Takes it out of routing; it ends when its requests and background work end. */
  retire(isolate: Isolate, reason: RetireReason | "idle" | "stopped"): void {
    if (isolate.retired || isolate.killed || isolate.ended) return;
    isolate.retired = reason;
    this.#drainIfDone(isolate);
  }

  /** Kills it for a limit: its in-flight requests answer 546. */
  kill(isolate: Isolate, reason: KillReason): void {
    if (isolate.killed || isolate.ended) return;
    isolate.killed = reason;
    isolate.process.kill();
  }

  /** Ends it at once: the gateway stops, or it did not start listening in time. */
  stop(isolate: Isolate, reason: "stopped" | "boot failed" = "stopped"): void {
    if (isolate.ended) return;
    isolate.retired ??= reason;
    isolate.process.kill();
  }

  /** Retires the isolates that had no request in flight for `idleMs` (0: never). */
  retireIdle(idleMs: number): void {
    if (idleMs <= 0) return;
    const now = this.deps.now();
    for (const isolate of this.#isolates) {
      if (isolate.inFlight === 0 && now - isolate.lastActivity >= idleMs) {
        this.retire(isolate, "idle");
      }
    }
  }

  /** Its process ended: writes its line and forgets it. */
  ended(isolate: Isolate, exitCode: number): void {
    if (isolate.ended) return;
    isolate.ended = true;
    this.#isolates = this.#isolates.filter((i) => i !== isolate);
    const now = this.deps.now();
    this.deps.record({
      function: this.functionName,
      isolate: isolate.id,
      pid: isolate.process.pid,
      started_at: new Date(isolate.startedAt).toISOString(),
      ended_at: new Date(now).toISOString(),
      requests: isolate.requests,
      cpu_ms: Math.round(isolate.cpuMs),
      wall_ms: Math.round(now - isolate.startedAt),
      reason: isolate.killed ?? isolate.retired ?? `exited with code ${exitCode}`,
    });
  }

  #drainIfDone(isolate: Isolate): void {
    if (isolate.retired && isolate.inFlight === 0 && !isolate.draining && !isolate.ended) {
      isolate.draining = true;
      isolate.process.drain();
    }
  }
}
