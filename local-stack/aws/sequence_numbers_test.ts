import assert from "node:assert/strict";
import {
  awsSequenceNumber,
  invalidSequenceNumber,
  localSequenceNumber,
  MAX_DIGITS,
  MIN_DIGITS,
  widthOf,
} from "./sequence_numbers.ts";

const pad = (n: bigint) => n.toString().padStart(21, "0");

Deno.test("DynamoDB Local's numbers go out as AWS's: 21 to 40 digits, no leading zero", () => {
  assert.equal(awsSequenceNumber("000000000000000000000"), "100000000000000000000");
  assert.equal(awsSequenceNumber("000000000000000000003"), "100000000000000000003");
  assert.equal(awsSequenceNumber("000000000000000000004"), "1000000000000000000004");
  assert.equal(awsSequenceNumber("16"), "10000000000000000000016");
  for (const n of [0n, 1n, 5n, 100n, 4n ** 10n, 4n ** 19n - 1n, 4n ** 19n, 10n ** 21n - 1n]) {
    const aws = awsSequenceNumber(pad(n));
    assert.match(aws, /^[1-9]\d*$/);
    assert(aws.length >= MIN_DIGITS && aws.length <= MAX_DIGITS, aws);
    assert.equal(aws.length, widthOf(n));
  }
  assert.equal(widthOf(4n ** 19n - 1n), 39);
  assert.equal(widthOf(10n ** 21n - 1n), MAX_DIGITS);
});

Deno.test("the mapping is strictly increasing, and at each step of width text order disagrees", () => {
  let previous = -1n;
  let steps = 0;
  for (let n = 0n; n < 5000n; n++) {
    const aws = awsSequenceNumber(pad(n));
    assert(BigInt(aws) > previous, `${n}`);
    if (n > 0n && aws.length !== awsSequenceNumber(pad(n - 1n)).length) {
      steps++;
      // As text, the wider (greater) number sorts first.
      assert(aws < awsSequenceNumber(pad(n - 1n)), `${n}`);
    }
    previous = BigInt(aws);
  }
  assert.equal(steps, 6); // at 4, 16, 64, 256, 1024, 4096
  for (let j = 1n; j <= 19n; j++) {
    const before = awsSequenceNumber(pad(4n ** j - 1n));
    const at = awsSequenceNumber(pad(4n ** j));
    assert(BigInt(at) > BigInt(before) && at.length === before.length + 1, `4^${j}`);
  }
});

Deno.test("AWS's numbers come back as DynamoDB Local's", () => {
  for (const n of [0n, 3n, 4n, 15n, 16n, 63n, 64n, 12345n, 4n ** 19n, 10n ** 21n - 1n]) {
    assert.equal(localSequenceNumber(awsSequenceNumber(pad(n))), pad(n));
  }
  for (let n = 0n; n < 300n; n++) {
    assert.equal(localSequenceNumber(awsSequenceNumber(n.toString())), pad(n));
  }
});

Deno.test("a number the stand-in never gave has no inverse", () => {
  for (
    const bad of [
      "000000000000000000042", // DynamoDB Local's own: a leading zero
      "42",
      "",
      "10000000000000000000x4",
      "100000000000000000004", // 21 digits, but 4 is given 22
      "1000000000000000000003", // 22 digits, but 3 is given 21
      "200000000000000000001", // no power of ten beneath
      "9".repeat(40),
      "1" + "0".repeat(40), // 41 digits
      " 100000000000000000001",
    ]
  ) {
    assert.equal(localSequenceNumber(bad), undefined, bad);
  }
  assert.notEqual(localSequenceNumber("100000000000000000001"), undefined);
});

Deno.test("the refusal has AWS's words for a length out of bounds", () => {
  assert.equal(
    invalidSequenceNumber("42"),
    "1 validation error detected: Value '42' at 'sequenceNumber' failed to satisfy " +
      "constraint: Member must have length greater than or equal to 21",
  );
  assert.match(invalidSequenceNumber("1".repeat(41)), /less than or equal to 40$/);
  assert.match(invalidSequenceNumber("000000000000000000042"), /^Invalid SequenceNumber/);
});
