/**
 * How far this function's clock can be from a service's, as far as one exchange proves
 * it (docs/sync-semantics.md, "Ordering"). A Scan page is stamped with the time it was
 * read on this clock: the ordering guard compares that stamp with the stream records'
 * times (DynamoDB's clock), and a backfill's end removes the rows stamped before its
 * start (Postgres's clock). A clock off by more than the guard's one-second granularity
 * would let a stale page overwrite a newer change, or a backfill remove rows it saw. AWS
 * does not catch it: a signed request may be 5 minutes off, and past that the SDK (and
 * dynamo_http.ts) signs at the service's clock instead.
 *
 * A service's clock is known from an exchange: it read `serverMs` (to `resolutionMs`:
 * an HTTP `Date` header, 1 s) somewhere between `sentAt` and `receivedAt` on ours. Only
 * what that proves counts, never an estimate: no false alarm however slow the exchange.
 *
 * @module
 */

/** One exchange with a service: when it left and came back on our clock, the service's time. */
export interface ClockReading {
  /** Our clock when the request left (ms since the epoch). */
  sentAt: number;
  /** Our clock when the answer came (ms since the epoch). */
  receivedAt: number;
  /** The service's clock, truncated to `resolutionMs`. */
  serverMs: number;
  /** How coarse `serverMs` is: 1,000 for an HTTP `Date`, 1 for Postgres's clock_timestamp(). */
  resolutionMs: number;
}

/**
 * How far our clock is ahead of the service's at least (positive), or behind at least
 * (negative), as the exchange proves; 0 when it proves neither.
 */
export function provenSkewMs(r: ClockReading): number {
  // The service read its clock at some instant t on ours, sentAt <= t <= receivedAt, as
  // a value in [serverMs, serverMs + resolutionMs). Ours is ahead by t - that value.
  const aheadAtLeast = r.sentAt - (r.serverMs + r.resolutionMs);
  const behindAtLeast = r.serverMs - r.receivedAt;
  if (aheadAtLeast > 0) return aheadAtLeast;
  if (behindAtLeast > 0) return -behindAtLeast;
  return 0;
}

/**
 * Why this clock cannot be trusted against `service`'s (a sentence for the operator), or
 * undefined when the exchange proves no skew beyond `toleranceMs`.
 */
export function clockSkewProblem(
  r: ClockReading,
  service: string,
  toleranceMs: number,
): string | undefined {
  const skew = provenSkewMs(r);
  if (Math.abs(skew) <= toleranceMs) return undefined;
  const by = `${(Math.abs(skew) / 1000).toFixed(1)} s`;
  return `this function's clock is at least ${by} ${
    skew > 0 ? "ahead of" : "behind"
  } ${service}'s (more than the ${toleranceMs} ms the sync's ordering allows): a page ` +
    `stamped with it could be ordered wrongly against the stream's changes, or removed by ` +
    `the backfill's end as unseen, so none is written until the clocks agree (check the ` +
    `host's time synchronisation)`;
}
