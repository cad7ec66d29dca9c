/**
 * The time a Scan page is stamped with (docs/sync-semantics.md, "Ordering"): an instant
 * on DynamoDB's own clock, provably no later than the read.
 *
 * The ordering guard compares a page's stamp with the stream records'
 * `ApproximateCreationDateTime`, which DynamoDB stamps on its clock and floors to the
 * second; the guard's one-second granularity is used up by that flooring alone. So the
 * stamp must not be later than the read on that same clock, by any amount: a page stamped
 * after a change it did not see would overwrite the change, or win over its late record.
 * This function's clock cannot give that (a host a fraction of a second ahead breaks it,
 * and AWS accepts signatures five minutes off). The page's own answer can: DynamoDB wrote
 * its `Date` (to the second, truncated) after it read the page, and read it after the
 * request reached it, at most one round trip before the answer came back. So the page was
 * read after `Date` less the round trip, on DynamoDB's clock, whatever ours says.
 *
 * @module
 */

/** One exchange with a service: how long it took, and the service's time in its answer. */
export interface ClockReading {
  /**
   * From the request leaving to its answer coming back, in ms, on a monotonic clock
   * (`performance.now()`): the wall clock may be stepped (NTP) while a request is in
   * flight, and a round trip measured on it could come out short or below zero, and the
   * stamp after the read (found by a review of the clocks).
   */
  roundTripMs: number;
  /** The service's clock in its answer (its HTTP `Date`, truncated to the second). */
  serverMs: number;
}

/**
 * How much earlier than its request left the stamp of a page whose answer carried no
 * `Date` is (AWS's always do; a stand-in's might not): this clock's time then, less 5 s.
 */
export const NO_DATE_MARGIN_MS = 5_000;

/**
 * The stamp of a page whose request left at `sentAt` (our clock): from `reading`, the
 * answer's own exchange (`$metadata.clock`, dynamo_http.ts; never another request's: a
 * client is shared by an isolate's runs), its `Date` less the round trip (see the
 * module's comment); else `sentAt` less {@link NO_DATE_MARGIN_MS}, on this function's
 * clock (AWS's answers always carry a `Date`).
 */
export function pageStamp(sentAt: number, reading: ClockReading | undefined): Date {
  if (reading) {
    return new Date(reading.serverMs - Math.max(0, reading.roundTripMs));
  }
  return new Date(sentAt - NO_DATE_MARGIN_MS);
}
