/**
 * The shape of each source table's items, made from the table registry: key attributes
 * present and of their key type, mapped attributes of the type their column needs.
 * Every other attribute is accepted as it is (it lands in the catch-all column). A
 * problem names each attribute that does not fit, and what it is instead.
 *
 * The checks are plain functions, made once per table: a zod object schema of the same
 * custom checks took about 1.3 ms of every batch of 1,000 stream records (a tenth of
 * their mapping), on the webhook's path at Lambda's largest batches.
 *
 * @module
 */

import { dynamoType, type DynamoValue } from "./dynamo_decoder.ts";
import { isDynamoNumber } from "./dynamo_numbers.ts";
import type { ColumnType, TableSpec } from "./table_registry.ts";

/** What a value must be for each column type, and how to say what it was instead. */
const EXPECTED: Record<ColumnType, { want: string; ok: (v: DynamoValue) => boolean }> = {
  text: { want: "a string (S)", ok: (v) => typeof v === "string" },
  numeric: { want: "a number (N)", ok: isDynamoNumber },
  epoch_seconds: { want: "a number (N) of epoch seconds", ok: isDynamoNumber },
  epoch_millis: { want: "a number (N) of epoch milliseconds", ok: isDynamoNumber },
  iso_timestamp: { want: "an ISO-8601 timestamp string (S)", ok: (v) => typeof v === "string" },
  jsonb: { want: "any value", ok: () => true },
};

function describe(value: DynamoValue): string {
  const shown = isDynamoNumber(value) ? value.value : value;
  const text = shown instanceof Set || shown instanceof Uint8Array || typeof shown === "object"
    ? ""
    : ` ${JSON.stringify(shown).slice(0, 60)}`;
  return `${dynamoType(value)}${text}`;
}

/** One attribute's check, given the whole item: its problem (without its name), or null. */
type Check = (value: DynamoValue | undefined, item: Record<string, DynamoValue>) => string | null;

function valueOf(type: ColumnType, required: boolean): Check {
  const expected = EXPECTED[type];
  return (v) => {
    if (v === undefined) return required ? "is missing" : null;
    if (v === null ? !required : expected.ok(v)) return null;
    return `expected ${expected.want}, got ${describe(v)}`;
  };
}

/** Amplify's `_deleted`: a boolean, NULL or absent. */
const deletedFlag: Check = (v) =>
  v === undefined || v === null || typeof v === "boolean"
    ? null
    : `expected a boolean (BOOL), got ${describe(v)}`;

/** Each attribute's check, in the order the problems are named. */
type Checks = [name: string, check: Check][];

const itemChecks = new Map<TableSpec, Checks>();
const keyChecks = new Map<TableSpec, Checks>();

/** The checks of one table's items (made once per table). */
function itemChecksOf(spec: TableSpec): Checks {
  const known = itemChecks.get(spec);
  if (known) return known;
  // A Map keeps an attribute where it first came (a key attribute that a column also
  // reads is checked as a key, in the column's place).
  const checks = new Map<string, Check>();
  for (const column of Object.values(spec.columns)) {
    const names = [column.from].flat();
    names.forEach((name, i) => {
      const check = valueOf(column.type, false);
      // A fallback (actions' `type` after `action_type`) is the column's only when every
      // name before it is absent or NULL; otherwise it is an unmapped attribute, which
      // the catch-all keeps whatever its type.
      const earlier = names.slice(0, i);
      checks.set(
        name,
        i === 0
          ? check
          : (v, item) =>
            earlier.some((n) => item[n] !== undefined && item[n] !== null) ? null : check(v, item),
      );
    });
  }
  for (const key of spec.sourceKey) {
    checks.set(key.name, valueOf(key.type === "S" ? "text" : "numeric", true));
  }
  if (spec.deletedFlag) checks.set(spec.deletedFlag, deletedFlag);
  const made = [...checks];
  itemChecks.set(spec, made);
  return made;
}

/** The checks of one table's key attributes alone (what a REMOVE record carries). */
function keyChecksOf(spec: TableSpec): Checks {
  const known = keyChecks.get(spec);
  if (known) return known;
  const made: Checks = spec.sourceKey.map((key) => [
    key.name,
    valueOf(key.type === "S" ? "text" : "numeric", true),
  ]);
  keyChecks.set(spec, made);
  return made;
}

/** Every problem of `item` under `checks`, in one line: `attribute NAME: PROBLEM; ...`. */
function problemsOf(checks: Checks, item: Record<string, DynamoValue>): string | null {
  let problems: string[] | undefined;
  for (const [name, check] of checks) {
    const problem = check(Object.hasOwn(item, name) ? item[name] : undefined, item);
    if (problem !== null) (problems ??= []).push(`attribute ${name}: ${problem}`);
  }
  return problems ? problems.join("; ") : null;
}

/**
 * Why an item of `spec`'s table does not fit its registry entry (each attribute that
 * does not, in one line), or null when it fits.
 */
export function itemProblem(spec: TableSpec, item: Record<string, DynamoValue>): string | null {
  return problemsOf(itemChecksOf(spec), item);
}

/** Why a REMOVE record's key attributes do not fit `spec`'s key, or null. */
export function keyProblem(spec: TableSpec, keys: Record<string, DynamoValue>): string | null {
  return problemsOf(keyChecksOf(spec), keys);
}
