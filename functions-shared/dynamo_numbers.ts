/**
 * DynamoDB's numbers, kept exact: up to 38 significant digits, more than a JS number
 * holds, so a number stays a {@link DynamoNumber} (its exact decimal text) from the stream
 * record to the JSON that reaches Postgres, where jsonb and numeric keep every digit.
 * Here: the check that a text is one of DynamoDB's numbers, its JSON spelling, and exact
 * comparison without rounding to a double (docs/source-tables.md, "Values that JSON
 * cannot hold as such").
 *
 * @module
 */

/**
 * A DynamoDB number, kept as its exact decimal text (as the AWS SDK's `NumberValue`
 * keeps it: `value`, and the text again from `toString` and `valueOf`).
 */
export class DynamoNumber {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }

  valueOf(): string {
    return this.value;
  }
}

/** Whether a value is a DynamoDB number. */
export function isDynamoNumber(value: unknown): value is DynamoNumber {
  return value instanceof DynamoNumber;
}

/** DynamoDB's numbers: up to 38 significant digits, magnitudes from 1E-130 to under 1E+126. */
const MAX_DIGITS = 38;
const MIN_EXPONENT = -130;
const MAX_EXPONENT = 125;

/** Why a text is not a DynamoDB number, or undefined when it is one. */
export function numberProblem(text: string): string | undefined {
  const shown = JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
  let json;
  try {
    json = numberJson(text);
  } catch {
    return `${shown} is not a number`;
  }
  const parts = decimalParts(json);
  if (parts.digits.length > MAX_DIGITS) {
    return `${shown} has ${parts.digits.length} significant digits; DynamoDB numbers have at most ${MAX_DIGITS}`;
  }
  if (Math.abs(writtenParts(json).exp) >= NUMERIC_MAX_EXPONENT) {
    return `${shown} has an exponent Postgres cannot read (its numeric refuses ${NUMERIC_MAX_EXPONENT} and more either way)`;
  }
  const lead = parts.exponent + parts.digits.length - 1;
  if (parts.sign !== 0 && (lead < MIN_EXPONENT || lead > MAX_EXPONENT)) {
    return `${shown} is out of DynamoDB's number range (exponent ${MIN_EXPONENT} to +${MAX_EXPONENT})`;
  }
  // In range, and still refused by Postgres when written with more places after the
  // point than its numeric keeps (`0e-20000`, `1.` and 20,000 zeros): the batch's
  // statement would fail with its rows in the log.
  if (!numericStorable(text)) {
    return `${shown} is written with more than ${NUMERIC_MAX_SCALE} digits after the point, which Postgres's numeric refuses`;
  }
  return undefined;
}

/** A JSON number: DynamoDB's number text must be one to be written as it is. */
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * The exact JSON text of a DynamoDB number. DynamoDB accepts a few spellings that JSON
 * does not (`+1`, `.5`, `5.`, `007`); they are rewritten without changing the value.
 * Throws on text that is not a number at all.
 */
export function numberJson(text: string): string {
  if (JSON_NUMBER.test(text)) return text;
  const match = text.trim().match(/^([+-]?)(\d*)(?:\.(\d*))?([eE][+-]?\d+)?$/);
  if (!match || (match[2] === "" && (match[3] ?? "") === "")) {
    throw new TypeError(`not a number: ${JSON.stringify(text)}`);
  }
  const [, sign, whole, fraction, exponent] = match;
  const digits = whole.replace(/^0+(?=\d)/, "") || "0";
  const normalized = `${sign === "-" ? "-" : ""}${digits}${fraction ? `.${fraction}` : ""}${
    exponent ?? ""
  }`;
  if (!JSON_NUMBER.test(normalized)) throw new TypeError(`not a number: ${JSON.stringify(text)}`);
  return normalized;
}

/** A number's JSON text as written: its sign, the digits before and after the point, its exponent. */
function writtenParts(
  json: string,
): { sign: string; whole: string; fraction: string; exp: number } {
  const [, sign, whole, fraction = "", exp = "0"] = json.match(
    /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/,
  )!;
  return { sign, whole, fraction, exp: Number(exp) };
}

/** Sign, significant digits and the exponent of the last digit: 12.5 is (1, "125", -1). */
export function decimalParts(text: string): { sign: number; digits: string; exponent: number } {
  const { sign, whole, fraction, exp } = writtenParts(numberJson(text));
  const all = (whole + fraction).replace(/^0+/, "");
  const digits = all.replace(/0+$/, "");
  if (digits === "") return { sign: 0, digits: "", exponent: 0 };
  const exponent = Number(exp) - fraction.length + (all.length - digits.length);
  return { sign: sign === "-" ? -1 : 1, digits, exponent };
}

/** Postgres's numeric: digits after the point, and the leading digit's place, at most. */
const NUMERIC_MAX_SCALE = 16_383;
const NUMERIC_MAX_LEAD = 131_071;
/** The exponent as written that Postgres's numeric input refuses, from (`INT_MAX / 2`). */
const NUMERIC_MAX_EXPONENT = 1_073_741_823;

/**
 * Whether Postgres's numeric, and so jsonb, reads this number text. Past its limits
 * Postgres refuses it ("value overflows numeric format", SQLSTATE 22003; tried on
 * Postgres 15): more than 16,383 digits after the point as written, trailing zeros and
 * the exponent counted (`1.0e-16383` is refused, `1e-16383` read), a leading digit
 * at the 131,072nd place or above (`1e131072`), or an exponent as written of
 * 1,073,741,823 or more either way, whatever the digits (`0e1073741823`). DynamoDB's numbers are far inside; a
 * person's direct request may not be.
 */
export function numericStorable(text: string): boolean {
  let json;
  try {
    json = numberJson(text);
  } catch {
    return false;
  }
  const { fraction, exp } = writtenParts(json);
  // Whatever the digits, zero too: an exponent of 2^30 - 1 or more either way is refused.
  if (Math.abs(exp) >= NUMERIC_MAX_EXPONENT) return false;
  if (Math.max(0, fraction.length - exp) > NUMERIC_MAX_SCALE) return false;
  const { sign, digits, exponent } = decimalParts(json);
  return sign === 0 || exponent + digits.length - 1 <= NUMERIC_MAX_LEAD;
}

/** Compares two decimal numbers exactly (no rounding to a double): -1, 0 or 1. */
export function compareDecimal(a: string, b: string): number {
  const x = decimalParts(a);
  const y = decimalParts(b);
  if (x.sign !== y.sign) return Math.sign(x.sign - y.sign);
  if (x.sign === 0) return 0;
  // Compare magnitudes: first by the position of the leading digit, then digit by digit.
  const lead = (p: typeof x) => p.digits.length + p.exponent;
  let magnitude = Math.sign(lead(x) - lead(y));
  if (magnitude === 0) {
    const width = Math.max(x.digits.length, y.digits.length);
    const dx = x.digits.padEnd(width, "0");
    const dy = y.digits.padEnd(width, "0");
    magnitude = dx < dy ? -1 : dx > dy ? 1 : 0;
  }
  return magnitude * x.sign || 0; // never -0: equal numbers compare as 0
}

/** JSON.parse that keeps each number's exact text as a {@link DynamoNumber}. */
export function parseJsonExact(text: string): unknown {
  // The reviver's third argument (the number's source text) is TC39's JSON.parse
  // source text access, in V8 and so in Deno and Node 20+.
  // deno-lint-ignore no-explicit-any
  return (JSON.parse as any)(
    text,
    (_key: string, value: unknown, context?: { source?: string }) =>
      typeof value === "number" && context?.source ? new DynamoNumber(context.source) : value,
  );
}
