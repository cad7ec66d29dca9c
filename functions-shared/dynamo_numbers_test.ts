import assert from "node:assert/strict";
import fc from "fast-check";
import { compareDecimal, numberJson } from "./dynamo_numbers.ts";

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
  fc.assert(
    fc.property(fc.integer(), fc.integer(), (a, b) => {
      assert.equal(compareDecimal(String(a), String(b)), Math.sign(a - b));
    }),
  );
});
