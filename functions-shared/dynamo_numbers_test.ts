import assert from "node:assert/strict";
import fc from "fast-check";
import { compareDecimal, numberJson, numberProblem, numericStorable } from "./dynamo_numbers.ts";

Deno.test("numberJson rewrites DynamoDB's spellings into JSON without changing the value", () => {
  assert.equal(
    numberJson("12345678901234567890123456789012345678"),
    "12345678901234567890123456789012345678",
  );
  assert.equal(numberJson("+5"), "5");
  assert.equal(numberJson(".5"), "0.5");
  assert.equal(numberJson("-.5"), "-0.5");
  assert.equal(numberJson("5."), "5");
  assert.equal(numberJson("007"), "7");
  assert.equal(numberJson("1E+2"), "1E+2");
  assert.throws(() => numberJson("abc"), /not a number: "abc"/);
  assert.throws(() => numberJson("."), /not a number/);
  assert.throws(() => numberJson(""), /not a number/);
});

Deno.test("compareDecimal orders exactly where doubles cannot", () => {
  assert.equal(compareDecimal("9007199254740993", "9007199254740992"), 1);
  assert.equal(compareDecimal("1.0", "1"), 0);
  assert.equal(compareDecimal("1E+2", "100"), 0);
  assert.equal(compareDecimal("-2", "-10"), 1);
  assert.equal(compareDecimal("0", "-0"), 0);
  assert.equal(compareDecimal("0.001", "1E-3"), 0);
  assert.equal(compareDecimal("1.2", "1.23"), -1);
  assert.equal(compareDecimal("1.23", "1.2"), 1);
  assert.equal(compareDecimal("-1.2", "-1.23"), 1);
  fc.assert(
    fc.property(fc.integer(), fc.integer(), (a, b) => {
      assert.equal(compareDecimal(String(a), String(b)), Math.sign(a - b));
    }),
  );
});

Deno.test("numericStorable agrees with Postgres 15's numeric input at its limits", () => {
  // Each tried with `select '<text>'::jsonb` on the stack's Postgres.
  const read = [
    "1e131071",
    "9.99e131071",
    "99e131070",
    "1e-16383",
    "1.0e-16382",
    "0",
    "-5.25",
    "0e1073741822",
  ];
  const refused = [
    "1e131072",
    "99e131071",
    "1e-16384",
    "1.0e-16383",
    "1e2147483648",
    "abc",
    "0e1073741823",
    "0e-1073741824",
  ];
  for (const text of read) assert.ok(numericStorable(text), text);
  for (const text of refused) assert.ok(!numericStorable(text), text);
  assert.ok(numericStorable(`0.${"0".repeat(16_383)}`), "16,383 zeros after the point");
  assert.ok(!numericStorable(`0.${"0".repeat(16_384)}`), "16,384");
});

Deno.test("numberProblem refuses a zero whose exponent Postgres cannot read", () => {
  assert.match(numberProblem("0e2000000000")!, /has an exponent Postgres cannot read/);
  assert.equal(numberProblem("0e5"), undefined);
});

Deno.test("numberProblem takes magnitudes under 1E+126 and refuses 1E+126 itself", () => {
  assert.equal(numberProblem("9.99e125"), undefined);
  assert.equal(numberProblem("-9.99e125"), undefined);
  assert.match(
    numberProblem("1e126")!,
    /out of DynamoDB's number range \(exponent -130 to \+125\)/,
  );
  assert.match(numberProblem("-1E+126")!, /out of DynamoDB's number range/);
});

Deno.test("numberProblem counts significant digits without trailing zeros", () => {
  // 1 followed by 38 zeros has one significant digit, inside DynamoDB's 38.
  assert.equal(numberProblem(`1${"0".repeat(38)}`), undefined);
  assert.equal(numberProblem(`1.${"0".repeat(40)}`), undefined);
  assert.match(
    numberProblem(`1${"0".repeat(37)}1`)!,
    /has 39 significant digits; DynamoDB numbers have at most 38/,
  );
});

Deno.test("numberProblem refuses a zero whose negative exponent Postgres cannot read", () => {
  assert.match(numberProblem("0e-1073741823")!, /has an exponent Postgres cannot read/);
  // One less is read as an exponent, and still refused: 1,073,741,822 places after the point.
  assert.match(numberProblem("0e-1073741822")!, /more than 16383 digits after the point/);
});

Deno.test("numberProblem refuses what Postgres's numeric cannot hold, whatever DynamoDB's range says", () => {
  assert.match(numberProblem("0e-20000")!, /more than 16383 digits after the point/);
  assert.match(numberProblem(`1.${"0".repeat(20000)}`)!, /more than 16383 digits after the point/);
  assert.equal(numberProblem(`1.${"0".repeat(16000)}`), undefined);
  // Every number numberProblem takes, Postgres reads.
  for (const text of ["0e-16383", "0e-16384", "1e-130", `5${"0".repeat(125)}`, "1.50"]) {
    if (numberProblem(text) === undefined) assert.ok(numericStorable(text), text);
  }
});
