/**
 * How long an answer's `Retry-After` asks the client to wait. HTTP allows it as a number
 * of seconds or as a date ("Retry-After = HTTP-date / delay-seconds", RFC 9110 §10.2.3):
 * the hosted gateway, a proxy or a load balancer in front of the webhook may send either.
 *
 * @module
 */

/** An IMF-fixdate, the form a sender must use for an HTTP-date (RFC 9110 §5.6.7). */
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * The wait `header` asks for at `now` (ms), in ms: its seconds, or the time until its
 * date; 0 when it asks for none, is absent, or is neither form (a date already past
 * asks for none).
 */
export function retryAfterMs(header: string | null, now: number): number {
  const value = header?.trim() ?? "";
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  if (!IMF_FIXDATE.test(value)) return 0;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}
