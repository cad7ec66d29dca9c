import assert from "node:assert/strict";
import { parseJsonExact } from "./dynamo_numbers.ts";
import {
  anyObject,
  exactly,
  listOf,
  nonEmptyText,
  oneOf,
  positiveInteger,
  problemText,
  strictObject,
  trueOrFalse,
} from "./json_shape.ts";

const form = strictObject({
  name: { check: nonEmptyText },
  ids: { check: listOf(positiveInteger), optional: true },
  kind: { check: oneOf(["a", "b"]), optional: true },
  on: { check: trueOrFalse, optional: true },
  data: { check: anyObject, optional: true },
  always: { check: exactly(true), optional: true },
});

function problem(value: unknown): string | undefined {
  const found = form(value, []);
  return found && problemText(found);
}

Deno.test("a body of the right shape has no problem", () => {
  assert.equal(problem({ name: "x" }), undefined);
  assert.equal(
    problem({ name: "x", ids: [1, 2], kind: "b", on: false, data: { n: 1 }, always: true }),
    undefined,
  );
  assert.equal(problem({ name: "x", data: parseJsonExact('{"n": 1.5}') }), undefined);
});

Deno.test("each problem names its path and what was expected", () => {
  const cases: [unknown, string][] = [
    [[], "(the body): expected an object, not a list"],
    [null, "(the body): expected an object, not null"],
    [{}, "name: required, but missing"],
    [{ name: "" }, "name: expected a non-empty string, not an empty one"],
    [{ name: 5 }, "name: expected a non-empty string, not a number"],
    [{ name: "x", ids: "1" }, "ids: expected a list, not a string"],
    [{ name: "x", ids: [1, 0] }, "ids.1: expected a whole number above 0, not 0"],
    [{ name: "x", ids: [1.5] }, "ids.0: expected a whole number above 0, not 1.5"],
    [{ name: "x", ids: ["1"] }, "ids.0: expected a whole number above 0, not a string"],
    [{ name: "x", kind: "c" }, 'kind: expected one of "a", "b", not "c"'],
    [{ name: "x", kind: 1 }, 'kind: expected one of "a", "b", not a number'],
    [{ name: "x", on: "true" }, "on: expected true or false, not a string"],
    [{ name: "x", data: [1] }, "data: expected an object, not a list"],
    [{ name: "x", data: parseJsonExact("1") }, "data: expected an object, not a number"],
    [{ name: "x", always: false }, "always: expected true, not a boolean"],
    [{ name: "x", when: 1 }, '(the body): unrecognized key: "when"'],
    [{ name: "x", when: 1, how: 2 }, '(the body): unrecognized keys: "when", "how"'],
  ];
  for (const [value, expected] of cases) assert.equal(problem(value), expected, expected);
});

Deno.test("a nested object's problems carry the whole path", () => {
  const outer = strictObject({
    inner: { check: strictObject({ id: { check: positiveInteger } }) },
  });
  assert.deepEqual(outer({ inner: { id: -1 } }, []), {
    path: ["inner", "id"],
    message: "expected a whole number above 0, not -1",
  });
  assert.deepEqual(outer({ inner: { id: 1, x: 2 } }, []), {
    path: ["inner"],
    message: 'unrecognized key: "x"',
  });
});
