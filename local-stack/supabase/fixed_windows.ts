/**
 * Fixed-window counters, as the hosted platform counts its rate limits: a key's window
 * opens with its first event and lasts `windowMs`; at most `perWindow` events are taken in
 * it, and one refused is told the milliseconds until the window ends (supabase/edge-runtime,
 * ext/runtime/rate_limit.rs, `check_and_increment`). Used for the calls between functions
 * (function_calls.ts) and the functions' log events (log_limits.ts).
 *
 * @module
 */

/** An event taken from its key's window, or refused until the window ends. */
export type WindowVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Counts events per key in fixed windows. */
export class FixedWindows {
  #windows = new Map<string, { count: number; endsAt: number }>();

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one event from `key`'s window, or says when its next window opens. */
  take(key: string): WindowVerdict {
    const now = this.now();
    let window = this.#windows.get(key);
    if (!window || now >= window.endsAt) {
      this.#forgetEnded(now);
      window = { count: 0, endsAt: now + this.windowMs };
      this.#windows.set(key, window);
    }
    if (window.count >= this.perWindow) {
      return { allowed: false, retryAfterMs: window.endsAt - now };
    }
    window.count += 1;
    return { allowed: true };
  }

  /** How many keys have a window open (ended ones are forgotten as new ones open). */
  get size(): number {
    return this.#windows.size;
  }

  #forgetEnded(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now >= window.endsAt) this.#windows.delete(key);
    }
  }
}
