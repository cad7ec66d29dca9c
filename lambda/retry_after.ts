/**
 * How long an answer's `Retry-After` asks the client to wait. HTTP allows it as a number
 * of seconds or as a date ("Retry-After = HTTP-date / delay-seconds", RFC 9110 §10.2.3):
 * the hosted gateway, a proxy or a load balancer in front of the webhook may send either.
 * A date is read in the three forms a recipient must accept (RFC 9110 §5.6.7): the
 * IMF-fixdate senders use, and the obsolete RFC 850 and asctime forms.
 *
 * @module
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH = MONTHS.join("|");

/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) (${MONTH}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`,
);
/** `Sunday, 06-Nov-94 08:49:37 GMT` */
const RFC_850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-(${MONTH})-(\\d{2}) ` +
    `(\\d{2}):(\\d{2}):(\\d{2}) GMT$`,
);
/** `Sun Nov  6 08:49:37 1994` (in GMT) */
const ASCTIME = new RegExp(
  `^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTH}) ([ \\d]\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`,
);

/** An HTTP-date's time in ms, or NaN when `value` is none of its three forms. */
function httpDateMs(value: string, now: number): number {
  const at = (year: number, month: string, day: string, h: string, m: string, s: string) =>
    Date.UTC(year, MONTHS.indexOf(month), Number(day), Number(h), Number(m), Number(s));
  let match = IMF_FIXDATE.exec(value);
  if (match) return at(Number(match[3]), match[2], match[1], match[4], match[5], match[6]);
  match = ASCTIME.exec(value);
  if (match) return at(Number(match[6]), match[1], match[2], match[3], match[4], match[5]);
  match = RFC_850.exec(value);
  if (match) {
    // A two-digit year more than 50 years ahead is of the century before (RFC 9110 §5.6.7).
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(match[3]);
    if (year > thisYear + 50) year -= 100;
    return at(year, match[2], match[1], match[4], match[5], match[6]);
  }
  return NaN;
}

/**
 * The wait `header` asks for at `now` (ms), in ms: its seconds, or the time until its
 * date; 0 when it asks for none, is absent, or is neither form (a date already past
 * asks for none).
 */
export function retryAfterMs(header: string | null, now: number): number {
  const value = header?.trim() ?? "";
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = httpDateMs(value, now);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}
