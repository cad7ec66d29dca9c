import assert from "node:assert/strict";
import fc from "fast-check";
import type { AttributeValue } from "./dynamo_commands.ts";
import { fromDynamo } from "./dynamo_decoder.ts";
import { bytesToBase64, encodeJson, encodeJsonSlowly, toDynamo } from "./dynamo_encoder.ts";
import { compareDecimal, isDynamoNumber, numberJson } from "./dynamo_numbers.ts";

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

Deno.test("a 400 KB binary attribute encodes without overflowing the stack", () => {
  const bytes = new Uint8Array(400 * 1024).map((_, i) => (i * 31) % 256);
  const text = bytesToBase64(bytes);
  assert.deepEqual(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)), bytes);
  const json = JSON.parse(encodeJson(fromDynamo({ blob: { B: bytes } })));
  assert.equal(json.blob, text);
  assert.equal(JSON.parse(encodeJsonSlowly({ blob: bytes })).blob, text);
});

Deno.test("encodeJson writes plain values as JSON.stringify does, bigints exactly", () => {
  const value = {
    big: 12345678901234567890123n,
    when: new Date("2026-11-29T08:00:00Z"),
    gone: undefined,
    list: [1, "two", null, undefined, { three: 3n }],
  };
  assert.equal(
    encodeJson(value),
    '{"big":12345678901234567890123,"when":"2026-11-29T08:00:00.000Z",' +
      '"list":[1,"two",null,null,{"three":3}]}',
  );
  const held = { list: [fromDynamo({ n: { N: "1.50" } })] };
  assert.equal(encodeJson(held), '{"list":[{"n":1.50}]}');
  assert.ok(isDynamoNumber(held.list[0].n), "the value itself is left as it was");
  assert.throws(() => encodeJson({ x: [Infinity] }), /not a finite number: Infinity/);
  assert.throws(() => encodeJson(NaN), /not a finite number: NaN/);
});

Deno.test("encodeJson writes each number's own text, whether a double holds it or not", () => {
  const texts = [
    "42",
    "-1.5",
    "0",
    "-0",
    "1.50",
    "1E+5",
    "1e5",
    "0.1",
    "123456789012345678",
    "9007199254740993",
    "12345678901234567890123456789012345678",
    "1E-130",
    "-9.99E125",
  ];
  const encoded = encodeJson(texts.map((N) => fromDynamo({ n: { N } }).n));
  assert.equal(encoded, `[${texts.map(numberJson).join(",")}]`);
  assert.throws(() => encodeJson([Number.NaN]), /not a finite number/);
});

Deno.test("toDynamo refuses what DynamoDB cannot hold: an empty set, a Date, a Map", () => {
  assert.throws(() => toDynamo({ s: new Set() } as never), /an empty set is no DynamoDB value/);
  assert.throws(() => toDynamo({ d: new Date(0) } as never), /cannot encode \[object Date\]/);
  assert.throws(() => toDynamo({ m: new Map() } as never), /cannot encode \[object Map\]/);
});

Deno.test("toDynamo leaves out members that are undefined, at the top and inside maps", () => {
  assert.deepEqual(toDynamo({ a: 1n, b: undefined, m: { c: undefined, d: "x" } } as never), {
    a: { N: "1" },
    m: { M: { d: { S: "x" } } },
  });
});
