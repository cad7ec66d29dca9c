/**
 * The stream sequence numbers of the DynamoDB stand-in, as AWS's look. DynamoDB Local
 * writes every stream record's `SequenceNumber` (and DescribeStream's
 * `StartingSequenceNumber` and `EndingSequenceNumber`) as 21 digits, zero-padded
 * (`000000000000000000042`), one counter for all its streams. AWS's are numbers of
 * varying width: "String contains numeric characters only", "Length Constraints: Minimum
 * length of 21. Maximum length of 40."
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_SequenceNumberRange.html,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).
 * Fixed-width numbers sort the same as text and as numbers, and survive a trip through
 * Postgres' `numeric` only while they have no leading zero: code that compares them as
 * text, or compares a number read back from SQL with the stream's text, works against
 * DynamoDB Local and breaks against AWS. So the stand-in hands out numbers shaped as
 * AWS's ({@link awsSequenceNumber}) and takes them back ({@link localSequenceNumber}).
 *
 * The mapping: DynamoDB Local's n becomes 10^(20+j) + n, with j = floor(log4 n) (0 for
 * n < 4), at most 19: 21 digits for n < 4, 22 for n < 16, 23 for n < 64, ... 40 from
 * 4^19 on. No leading zero; strictly increasing (within a width n grows; a wider number
 * is greater); and at each step of width text order and numeric order disagree
 * ("100000000000000000003" sorts after "1000000000000000000004" as text), so that a
 * stack's streams cross such a step every time their counter reaches a power of 4.
 * The inverse is n = v - 10^(len(v) - 1), when that n maps back to v.
 *
 * @module
 */

/** The fewest digits of a sequence number, as AWS's API reference constrains them. */
export const MIN_DIGITS = 21;
/** The most digits of a sequence number, as AWS's API reference constrains them. */
export const MAX_DIGITS = 40;
/** The digits of DynamoDB Local's sequence numbers (zero-padded). */
const LOCAL_DIGITS = 21;
const LOCAL_LIMIT = 10n ** BigInt(LOCAL_DIGITS);

/** floor(log4 n), 0 for n < 4, at most MAX_DIGITS - MIN_DIGITS. */
function step(n: bigint): number {
  let j = 0;
  for (let p = 4n; p <= n && j < MAX_DIGITS - MIN_DIGITS; p *= 4n) j++;
  return j;
}

/**
 * The width (digits) of the sequence number AWS-shaped for DynamoDB Local's `n`: 21 +
 * floor(log4 n), from 21 to 40.
 */
export function widthOf(n: bigint): number {
  return MIN_DIGITS + step(n);
}

/**
 * DynamoDB Local's sequence number `local` (decimal digits, zero-padded or not) as the
 * stand-in hands it out: 10^(width - 1) + n. Throws on anything but digits.
 */
export function awsSequenceNumber(local: string): string {
  if (!/^\d{1,21}$/.test(local)) {
    throw new Error(`not a sequence number of DynamoDB Local: ${local}`);
  }
  const n = BigInt(local);
  return (10n ** BigInt(widthOf(n) - 1) + n).toString();
}

/**
 * The DynamoDB Local sequence number (21 digits, zero-padded, as it writes them) that
 * {@link awsSequenceNumber} made `aws`, or undefined when no number of DynamoDB Local
 * maps to it: not digits, a leading zero, fewer than 21 or more than 40 digits, or a
 * number of the right shape that the mapping never gives.
 */
export function localSequenceNumber(aws: string): string | undefined {
  if (!/^[1-9]\d*$/.test(aws) || aws.length < MIN_DIGITS || aws.length > MAX_DIGITS) {
    return undefined;
  }
  const n = BigInt(aws) - 10n ** BigInt(aws.length - 1);
  if (n < 0n || n >= LOCAL_LIMIT || widthOf(n) !== aws.length) return undefined;
  return n.toString().padStart(LOCAL_DIGITS, "0");
}

/**
 * What AWS answers a request's sequence number `value` that no record of the stand-in
 * has (400 ValidationException): for a length outside 21..40, the words of AWS's own
 * validation (which DynamoDB Local answers too); else that it is no sequence number of
 * the stream. `field` is the member's name as AWS spells it in those words.
 */
export function invalidSequenceNumber(value: string, field = "sequenceNumber"): string {
  const bound = value.length < MIN_DIGITS
    ? `greater than or equal to ${MIN_DIGITS}`
    : value.length > MAX_DIGITS
    ? `less than or equal to ${MAX_DIGITS}`
    : undefined;
  if (bound) {
    return `1 validation error detected: Value '${value}' at '${field}' failed to satisfy ` +
      `constraint: Member must have length ${bound}`;
  }
  return `Invalid SequenceNumber ${value}: no record of this stream has it`;
}
