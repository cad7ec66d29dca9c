/**
 * The phases of `npm start` and their seconds (docs/interfaces.md, "npm start"). Phases
 * overlap (a table's backfill runs while the next one loads), so each is kept as its own
 * interval from the run's start: the output says when it began, when it ended and how
 * long it took.
 *
 * @module
 */

/** One phase: when it began and ended, in milliseconds from the clock's start. */
export interface Phase {
  name: string;
  startMs: number;
  endMs?: number;
}

/** Measures named, possibly overlapping phases of one run. */
export class PhaseClock {
  readonly #now: () => number;
  readonly #origin: number;
  readonly #phases: Phase[] = [];

  /** `now` in milliseconds (a fake in tests); the clock starts at its first reading. */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#origin = now();
  }

  /** Milliseconds since the clock started. */
  elapsedMs(): number {
    return this.#now() - this.#origin;
  }

  /** Begins a phase (a name may be used once). */
  start(name: string): void {
    if (this.#phases.some((p) => p.name === name)) throw new Error(`phase ${name} began twice`);
    this.#phases.push({ name, startMs: this.elapsedMs() });
  }

  /** Ends a phase that began; returns its seconds. */
  end(name: string): number {
    const phase = this.#phases.find((p) => p.name === name);
    if (!phase) throw new Error(`phase ${name} never began`);
    phase.endMs ??= this.elapsedMs();
    return (phase.endMs - phase.startMs) / 1000;
  }

  /** Runs `work` as the phase `name`, ending it whether or not the work succeeds. */
  async time<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.start(name);
    try {
      return await work();
    } finally {
      this.end(name);
    }
  }

  /** A phase's seconds (to now while it runs), or undefined if it never began. */
  seconds(name: string): number | undefined {
    const phase = this.#phases.find((p) => p.name === name);
    if (!phase) return undefined;
    return ((phase.endMs ?? this.elapsedMs()) - phase.startMs) / 1000;
  }

  /** The seconds from the first begun to the last ended of the phases whose names start with `prefix`. */
  span(prefix: string): number {
    const phases = this.#phases.filter((p) => p.name.startsWith(prefix));
    if (phases.length === 0) return 0;
    const first = Math.min(...phases.map((p) => p.startMs));
    const last = Math.max(...phases.map((p) => p.endMs ?? this.elapsedMs()));
    return (last - first) / 1000;
  }

  /** One line per phase, in the order they began: `phase NAME  from Xs to Ys  Zs`. */
  lines(): string[] {
    const width = Math.max(0, ...this.#phases.map((p) => p.name.length));
    const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
    return this.#phases.map((p) => {
      const end = p.endMs ?? this.elapsedMs();
      return `phase ${p.name.padEnd(width)}  from ${s(p.startMs).padStart(6)} to ${
        s(end).padStart(6)
      }  ${s(end - p.startMs).padStart(6)}${p.endMs === undefined ? " (still running)" : ""}`;
    });
  }
}
