import assert from "node:assert/strict";
import type { AttributeValue } from "./dynamo_commands.ts";
import { dynamoType, fromDynamo, ValueError } from "./dynamo_decoder.ts";
import { DynamoNumber } from "./dynamo_numbers.ts";

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

Deno.test("__proto__ stays data where assigning __proto__ sets the prototype (as in Node)", () => {
  // Deno's own __proto__ setter makes a data property; Annex B's, as Node and browsers
  // have it, sets the prototype. That one, for this test only.
  const deno = Object.getOwnPropertyDescriptor(Object.prototype, "__proto__")!;
  Object.defineProperty(Object.prototype, "__proto__", {
    configurable: true,
    get(this: object) {
      return Object.getPrototypeOf(this);
    },
    set(this: object, proto: unknown) {
      if (typeof proto === "object") Object.setPrototypeOf(this, proto);
    },
  });
  try {
    const item = fromDynamo(
      JSON.parse(
        '{"__proto__": {"M": {"polluted": {"S": "yes"}}}, "s": {"M": {"__proto__": {"S": "x"}}}}',
      ),
    );
    assert.ok(Object.hasOwn(item, "__proto__"));
    assert.deepEqual(Object.getOwnPropertyDescriptor(item, "__proto__")?.value, {
      polluted: "yes",
    });
    assert.equal(Object.getPrototypeOf(item), Object.prototype);
    assert.equal((item as Record<string, unknown>).polluted, undefined);
    const nested = item.s as Record<string, unknown>;
    assert.ok(Object.hasOwn(nested, "__proto__"));
    assert.equal(Object.getOwnPropertyDescriptor(nested, "__proto__")?.value, "x");
  } finally {
    Object.defineProperty(Object.prototype, "__proto__", deno);
  }
});

Deno.test("a name is checked every time until it is found storable", () => {
  const bad = "lone\uD800";
  for (let i = 0; i < 3; i++) {
    assert.throws(
      () => fromDynamo({ ok: { M: { [bad]: { S: "x" } } } }),
      (error: ValueError) => error.path === "ok" && /lone surrogate/.test(error.problem),
    );
    assert.throws(() => fromDynamo({ [bad]: { S: "x" } }), /attribute name/);
  }
  // Names found storable are remembered; values never are.
  assert.deepEqual(fromDynamo({ ok: { M: { fine: { S: "x" } } } }), { ok: { fine: "x" } });
  assert.throws(() => fromDynamo({ ok: { M: { fine: { S: bad } } } }), /ok\.fine/);
});
