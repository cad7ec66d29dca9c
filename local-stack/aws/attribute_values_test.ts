import assert from "node:assert/strict";
import { itemValueProblem, MAX_NESTING_LEVELS } from "./attribute_values.ts";

/** A value nested `levels` deep, its attribute the first: maps around a string. */
function nested(levels: number): unknown {
  let value: unknown = { S: "leaf" };
  for (let level = 1; level < levels; level++) value = { M: { a: value } };
  return value;
}

Deno.test("values DynamoDB stores pass, whatever their type", () => {
  const item = {
    id: { S: "a" },
    s: { S: "" },
    b: { B: "" },
    n: { N: "-1.5e-130" },
    big: { N: "9.99e125" },
    digits: { N: "1".repeat(38) },
    ss: { SS: ["", "x"] },
    ns: { NS: ["1", "2"] },
    bs: { BS: ["AA==", "AQ=="] },
    l: { L: [{ NULL: true }, { BOOL: false }, { M: {} }] },
    m: { M: { inner: { L: [] } } },
    deep: nested(MAX_NESTING_LEVELS),
  };
  assert.equal(itemValueProblem(item as never), undefined);
});

Deno.test("each value DynamoDB Local refuses in a write is named with its attribute", () => {
  const cases: [unknown, string][] = [
    [{ SS: [] }, "v: SS is empty"],
    [{ NS: [] }, "v: NS is empty"],
    [{ BS: [] }, "v: BS is empty"],
    [{ SS: ["a", "a"] }, 'v: SS holds "a" twice'],
    [{ NS: ["1", "1.0"] }, 'v: NS holds "1.0" twice'],
    [{ NS: ["x"] }, 'v: NS holds "x", not a number'],
    [{ BS: ["AA==", "AA=="] }, 'v: BS holds "AA==" twice'],
    [{ NULL: false }, "v: NULL must be true"],
    [{ S: "a", N: "1" }, "v must hold exactly one data type"],
    [{}, "v must hold exactly one data type"],
    [{ X: "1" }, "v must hold exactly one data type"],
    [{ N: "abc" }, "v is not a number DynamoDB stores"],
    [{ N: "1e126" }, "v is not a number DynamoDB stores"],
    [{ N: "1".repeat(39) }, "v is not a number DynamoDB stores"],
    [{ B: "!!!" }, "v is not base64"],
    [{ B: "AA" }, "v is not base64"],
    [{ B: "A A==" }, "v is not base64"],
    [{ B: "-_-_" }, "v is not base64"],
    [{ BS: ["AA"] }, "v: BS holds a value that is not base64"],
    [{ L: {} }, "v: L is not a list"],
    [{ M: [] }, "v: M is not a map"],
    [null, "v is not an attribute value"],
    [{ L: [{ S: "ok" }, { NULL: false }] }, "v[1]: NULL must be true"],
    [{ M: { x: { SS: [] } } }, "v.x: SS is empty"],
    [
      nested(MAX_NESTING_LEVELS + 1),
      `v${".a".repeat(MAX_NESTING_LEVELS)} nests more than 32 levels`,
    ],
  ];
  for (const [value, problem] of cases) {
    assert.equal(itemValueProblem({ id: { S: "a" }, v: value } as never), problem);
  }
  assert.equal(
    itemValueProblem({ id: { S: "a" }, "": { S: "x" } }),
    "(an attribute) has an empty name",
  );
});

Deno.test("values DynamoDB Local coerces are not called refused", () => {
  // DynamoDB Local writes these (its JSON reader coerces them): refusing them would make
  // the proxy forward such a batch whole and unthrottled.
  for (const value of [{ NULL: "true" }, { S: 5 }, { N: 5 }, { BOOL: "true" }, { SS: [1] }]) {
    assert.equal(itemValueProblem({ id: { S: "a" }, v: value } as never), undefined);
  }
});
