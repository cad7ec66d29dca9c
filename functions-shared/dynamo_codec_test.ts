import assert from "node:assert/strict";
import fc from "fast-check";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import {
  bytesToBase64,
  compareDecimal,
  DynamoNumber,
  dynamoType,
  encodeJson,
  encodeJsonSlowly,
  fromDynamo,
  numberJson,
  toDynamo,
  ValueError,
} from "./dynamo_codec.ts";

/** Decimal text as DynamoDB carries it: up to 38 significant digits, an optional exponent. */
const decimalText = fc.tuple(
  fc.constantFrom("", "-"),
  fc.stringMatching(/^[1-9][0-9]{0,37}$/),
  fc.option(fc.integer({ min: 1, max: 37 }), { nil: undefined }),
  fc.option(fc.integer({ min: -20, max: 20 }), { nil: undefined }),
).map(([sign, digits, point, exponent]) => {
  const body = point !== undefined && point < digits.length
    ? `${digits.slice(0, point)}.${digits.slice(point)}`
    : digits;
  return `${sign}${body}${exponent !== undefined ? `E${exponent}` : ""}`;
});

const attributeValue: fc.Arbitrary<AttributeValue> = fc.letrec<{ value: AttributeValue }>((
  tie,
) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.string().map((S) => ({ S })),
    decimalText.map((N) => ({ N })),
    fc.uint8Array({ minLength: 1, maxLength: 8 }).map((B) => ({ B })),
    fc.boolean().map((BOOL) => ({ BOOL })),
    fc.constant({ NULL: true }),
    fc.uniqueArray(fc.string(), { minLength: 1, maxLength: 4 }).map((SS) => ({ SS })),
    fc.uniqueArray(decimalText, {
      minLength: 1,
      maxLength: 4,
      comparator: (a, b) => compareDecimal(a, b) === 0,
    }).map((NS) => ({ NS })),
    fc.array(tie("value"), { maxLength: 3 }).map((L) => ({ L })),
    fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie("value"), { maxKeys: 3 })
      .map((M) => ({ M })),
  ),
})).value;

const item = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), attributeValue, {
  minKeys: 1,
  maxKeys: 5,
});

/** JSON.parse keeping each number's source text (TC39 JSON.parse source text access). */
function parseExact(text: string): unknown {
  // deno-lint-ignore no-explicit-any
  return (JSON.parse as any)(
    text,
    (_key: string, value: unknown, context: { source?: string }) =>
      typeof value === "number" ? { number: context.source } : value,
  );
}

/** What an attribute value must become in JSON: numbers as their text, sets sorted. */
function expectedJson(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return { number: numberJson(value.N) };
  if (value.B !== undefined) return btoa(String.fromCharCode(...value.B));
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL) return null;
  if (value.SS) return [...value.SS].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (value.NS) return [...value.NS].sort(compareDecimal).map((n) => ({ number: numberJson(n) }));
  if (value.L) return value.L.map(expectedJson);
  return Object.fromEntries(Object.entries(value.M!).map(([k, v]) => [k, expectedJson(v)]));
}

Deno.test("encodeJson keeps every digit of every number, and sets, binary and nesting", () => {
  fc.assert(
    fc.property(item, (attributes) => {
      const json = encodeJson(fromDynamo(attributes));
      const expected = Object.fromEntries(
        Object.entries(attributes).map(([k, v]) => [k, expectedJson(v)]),
      );
      assert.deepEqual(parseExact(json), expected);
    }),
    { numRuns: 300 },
  );
});

Deno.test("the native and the portable encoder write the same text", () => {
  fc.assert(
    fc.property(item, (attributes) => {
      const decoded = fromDynamo(attributes);
      assert.equal(encodeJson(decoded), encodeJsonSlowly(decoded));
    }),
    { numRuns: 200 },
  );
});

Deno.test("toDynamo(fromDynamo(x)) gives back x", () => {
  fc.assert(
    fc.property(item, (attributes) => {
      const back = toDynamo(fromDynamo(attributes));
      const normalize = (v: unknown): unknown =>
        parseExact(encodeJson(fromDynamo(v as Record<string, AttributeValue>)));
      assert.deepEqual(normalize(back), normalize(attributes));
      assert.deepEqual(Object.keys(back).sort(), Object.keys(attributes).sort());
    }),
    { numRuns: 200 },
  );
});

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

Deno.test("dynamoType names each kind of value", () => {
  const decoded = fromDynamo({
    s: { S: "x" },
    n: { N: "1" },
    b: { B: new Uint8Array([1]) },
    ss: { SS: ["a"] },
    ns: { NS: ["1"] },
    bs: { BS: [new Uint8Array([1])] },
    m: { M: {} },
    l: { L: [] },
    t: { BOOL: true },
    z: { NULL: true },
  });
  assert.deepEqual(
    Object.fromEntries(Object.entries(decoded).map(([k, v]) => [k, dynamoType(v)])),
    { s: "S", n: "N", b: "B", ss: "SS", ns: "NS", bs: "BS", m: "M", l: "L", t: "BOOL", z: "NULL" },
  );
  assert.ok(decoded.n instanceof DynamoNumber);
});

Deno.test("fromDynamo refuses what Postgres cannot store, naming the path and the cause", () => {
  const cases: [Record<string, AttributeValue>, RegExp][] = [
    [{ title: { S: "a\u0000b" } }, /^attribute title: the string contains U\+0000 \(NUL\)/],
    [
      { meta: { M: { tags: { L: [{ S: "ok" }, { S: "x\u0000" }] } } } },
      /^attribute meta\.tags\[1\]: the string contains U\+0000/,
    ],
    [
      { meta: { M: { ["bad\u0000key"]: { S: "v" } } } },
      /^attribute meta: the map key "bad\\u0000key" contains U\+0000/,
    ],
    [
      { ["name\u0000"]: { S: "v" } },
      /^attribute "name\\u0000": the attribute name contains U\+0000/,
    ],
    [{ title: { S: "half \ud800 pair" } }, /^attribute title: the string is not valid UTF-16/],
    [
      { meta: { M: { ["\udc00"]: { N: "1" } } } },
      /^attribute meta: the map key .* is not valid UTF-16/,
    ],
    [{ labels: { SS: ["ok", "\u0000"] } }, /^attribute labels\[1\]: the string contains U\+0000/],
    [{ n: { N: "abc" } }, /^attribute n: "abc" is not a number$/],
    [{ n: { N: "" } }, /^attribute n: "" is not a number$/],
    [{ n: { N: "1e999" } }, /^attribute n: "1e999" is out of DynamoDB's number range/],
    [{ n: { N: "1e-131" } }, /^attribute n: "1e-131" is out of DynamoDB's number range/],
    [{ n: { N: "1".repeat(39) } }, /has 39 significant digits; DynamoDB numbers have at most 38/],
    [{ ns: { NS: ["1", "x"] } }, /^attribute ns\[1\]: "x" is not a number$/],
  ];
  for (const [item, message] of cases) {
    assert.throws(() => fromDynamo(item), (e: unknown) => {
      assert.ok(e instanceof ValueError, `${message}: a ValueError`);
      assert.match((e as Error).message, message);
      return true;
    });
  }
});

Deno.test("fromDynamo accepts DynamoDB's extremes and keeps __proto__ as data", () => {
  const item = fromDynamo({
    big: { N: "9.9999999999999999999999999999999999999E+125" },
    small: { N: "-1E-130" },
    digits: { N: "1".repeat(38) },
    zero: { N: "0e999" },
    emoji: { S: "\ud83d\ude00" },
    ["__proto__"]: { S: "data" },
  });
  assert.equal(Object.keys(item).length, 6);
  assert.equal(Object.getPrototypeOf(item), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(item, "__proto__")?.value, "data");
});

Deno.test("a 400 KB binary attribute encodes without overflowing the stack", () => {
  const bytes = new Uint8Array(400 * 1024).map((_, i) => (i * 31) % 256);
  const text = bytesToBase64(bytes);
  assert.deepEqual(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)), bytes);
  const json = JSON.parse(encodeJson(fromDynamo({ blob: { B: bytes } })));
  assert.equal(json.blob, text);
  assert.equal(JSON.parse(encodeJsonSlowly({ blob: bytes })).blob, text);
});
