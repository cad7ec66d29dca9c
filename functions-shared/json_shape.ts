/**
 * Strict checks of a JSON request body's shape, written by hand: each failure is a
 * {@link ShapeProblem} that says where (a path of keys and indexes) and what is wrong.
 *
 * The functions carried a schema library for three small bodies (the webhook's direct
 * form, the dead-letter replay's filter, the validator's requests). Hosted Supabase puts
 * every file of every npm package a function imports into its bundle, and bundles made on
 * its servers (`supabase functions deploy --use-api`, and the CLI without Docker) may weigh
 * at most 5 MB; that library alone was 5.9 MB (README, "Deploying the functions").
 *
 * @module
 */

import { isDynamoNumber } from "./dynamo_numbers.ts";

/** Where a problem is, and what it is. */
export interface ShapeProblem {
  path: (string | number)[];
  message: string;
}

/** Checks one value found at `path`: its problem, or undefined when it is right. */
export type Check = (value: unknown, path: (string | number)[]) => ShapeProblem | undefined;

/** A plain JSON object (not a list, not null, not an exact number). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !isDynamoNumber(value);
}

/** What a value is, for a message: `a string`, `a list`, `nothing`... */
export function described(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isDynamoNumber(value)) return "a number";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function check(ok: (value: unknown) => boolean, expected: string): Check {
  return (value, path) =>
    ok(value) ? undefined : { path, message: `expected ${expected}, not ${described(value)}` };
}

/** A string of at least one character. */
export const nonEmptyText: Check = (value, path) =>
  value === ""
    ? { path, message: "expected a non-empty string, not an empty one" }
    : check((v) => typeof v === "string", "a non-empty string")(value, path);

/** A whole number above zero. */
export const positiveInteger: Check = (value, path) =>
  typeof value === "number" && !(Number.isSafeInteger(value) && value > 0)
    ? { path, message: `expected a whole number above 0, not ${value}` }
    : check((v) => typeof v === "number", "a whole number above 0")(value, path);

/** A whole number, 0 or above. */
export const wholeNumber: Check = (value, path) =>
  typeof value === "number" && !(Number.isSafeInteger(value) && value >= 0)
    ? { path, message: `expected a whole number, 0 or above, not ${value}` }
    : check((v) => typeof v === "number", "a whole number, 0 or above")(value, path);

/** true or false. */
export const trueOrFalse: Check = check((v) => typeof v === "boolean", "true or false");

/** An object, whatever its keys and values. */
export const anyObject: Check = check(isObject, "an object");

/** Exactly `expected` (a string, number or boolean). */
export function exactly(expected: string | number | boolean): Check {
  return check((v) => v === expected, JSON.stringify(expected));
}

/** One of the strings `choices`. */
export function oneOf(choices: readonly string[]): Check {
  const allowed = new Set(choices);
  return (value, path) =>
    typeof value === "string" && allowed.has(value) ? undefined : {
      path,
      message: `expected one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, not ${
        typeof value === "string" ? JSON.stringify(value) : described(value)
      }`,
    };
}

/** A list whose every item passes `item` (the first item that does not is named). */
export function listOf(item: Check): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return { path, message: `expected a list, not ${described(value)}` };
    for (let i = 0; i < value.length; i++) {
      const problem = item(value[i], [...path, i]);
      if (problem) return problem;
    }
    return undefined;
  };
}

/** A field of {@link strictObject}: its check, and whether it may be left out. */
export interface Field {
  check: Check;
  optional?: boolean;
}

/**
 * An object with exactly these fields: a missing required field, a field that fails its
 * check, and a key not among them are each a problem (checked in that order).
 */
export function strictObject(fields: Record<string, Field>): Check {
  return (value, path) => {
    if (!isObject(value)) return { path, message: `expected an object, not ${described(value)}` };
    for (const [name, field] of Object.entries(fields)) {
      const present = Object.hasOwn(value, name) && value[name] !== undefined;
      if (!present) {
        if (field.optional) continue;
        return { path: [...path, name], message: "required, but missing" };
      }
      const problem = field.check(value[name], [...path, name]);
      if (problem) return problem;
    }
    const extra = Object.keys(value).filter((key) => !Object.hasOwn(fields, key));
    if (extra.length === 0) return undefined;
    return {
      path,
      message: `unrecognized key${extra.length > 1 ? "s" : ""}: ${
        extra.map((key) => JSON.stringify(key)).join(", ")
      }`,
    };
  };
}

/** The problem as a line: `path: message`, `(the body)` for the body itself. */
export function problemText({ path, message }: ShapeProblem): string {
  return `${path.length > 0 ? path.join(".") : "(the body)"}: ${message}`;
}
