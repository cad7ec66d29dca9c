import assert from "node:assert/strict";
import { besideTheMessage, describeError, errorIdentifiers, withoutQuotes } from "./error_text.ts";

Deno.test("a Postgres error is one line with its code, detail, hint and identifiers", () => {
  const error = Object.assign(new Error('duplicate key value violates unique constraint "u"'), {
    name: "PostgresError",
    code: "23505",
    detail: "Key (email)=(a@b) already exists.",
    hint: "",
    table_name: "leads",
    constraint_name: "u",
  });
  assert.equal(
    describeError(error),
    'PostgresError (23505): duplicate key value violates unique constraint "u"; ' +
      "detail: Key (email)=(a@b) already exists. (table leads, constraint u)",
  );
  assert.equal(errorIdentifiers(error), " (table leads, constraint u)");
  assert.equal(errorIdentifiers(new Error("x")), "");
});

Deno.test("a not-null or check violation's detail, the whole row, is never repeated", () => {
  for (const code of ["23502", "23514"]) {
    const error = Object.assign(new Error('new row violates check constraint "c"'), {
      code,
      detail: "Failing row contains (s-1, alice@example.com, 555-0100).",
      hint: "",
      table_name: "mmp_toledo_leads",
      constraint_name: "c",
    });
    assert.equal(besideTheMessage(error), " (table mmp_toledo_leads, constraint c)", code);
    assert.doesNotMatch(describeError(error), /alice|Failing row/, code);
  }
});

Deno.test("an AggregateError with no message names its causes; lines are joined", () => {
  const error = new AggregateError([
    Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:6543"), { code: "ECONNREFUSED" }),
    Object.assign(new Error("connect ENETUNREACH ::1:6543"), { code: "ENETUNREACH" }),
  ], "");
  assert.equal(
    describeError(error),
    "AggregateError: Error (ECONNREFUSED): connect ECONNREFUSED 10.0.0.1:6543; " +
      "Error (ENETUNREACH): connect ENETUNREACH ::1:6543",
  );
  assert.equal(describeError(new Error("a\n  b")), "Error: a b");
  assert.equal(describeError("plain"), "plain");
});

Deno.test("a fault of the code says where, by its first frame", () => {
  let fault: unknown;
  try {
    (undefined as unknown as { x: number }).x;
  } catch (error) {
    fault = error;
  }
  assert.match(describeError(fault), /^TypeError: .* \(at .*error_text_test\.ts:\d+:\d+\)$/);
});

Deno.test("an error whose stack is no text is still one line", () => {
  const odd = Object.assign(new TypeError("odd"), { stack: Object.create(null) });
  assert.equal(describeError(odd), "TypeError: odd");
});

Deno.test("Postgres's hint is kept, and an AggregateError with a message keeps its causes too", () => {
  const hinted = Object.assign(new Error('column "x" does not exist'), {
    name: "PostgresError",
    code: "42703",
    hint: 'Perhaps you meant to reference the column "t.y".',
  });
  assert.equal(
    describeError(hinted),
    'PostgresError (42703): column "x" does not exist; hint: Perhaps you meant to reference ' +
      'the column "t.y".',
  );
  const error = new AggregateError([
    Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:6543"), { code: "ECONNREFUSED" }),
    new Error("timeout"),
  ], "every address failed");
  assert.equal(
    describeError(error),
    "AggregateError: every address failed " +
      "[Error (ECONNREFUSED): connect ECONNREFUSED 10.0.0.1:6543; Error: timeout]",
  );
});

Deno.test("withoutQuotes leaves out what a message quotes, from its first quote on", () => {
  assert.equal(
    withoutQuotes('invalid input syntax for type numeric: "ssn-123-45-6789"'),
    "invalid input syntax for type numeric: (quoted text)",
  );
  assert.equal(
    withoutQuotes(`Unexpected token 's', "s"s" is not valid JSON`),
    "Unexpected token (quoted text)",
  );
  // The character V8 stopped at is the body's too, whatever it is.
  for (const token of ["'", "é", "😀", ","]) {
    assert.equal(
      withoutQuotes(`Unexpected token '${token}', "${token}" is not valid JSON`),
      "Unexpected token (quoted text)",
    );
  }
  assert.equal(withoutQuotes("no quotes here"), "no quotes here");
});
