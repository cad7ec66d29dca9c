/**
 * Zod schemas for the items of each source table, made from the table registry: key
 * attributes present and of their key type, mapped attributes of the type their column
 * needs. Every other attribute is accepted as it is (it lands in the catch-all column).
 *
 * @module
 */

import { z } from "zod";
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

function valueOf(type: ColumnType, required: boolean) {
  const expected = EXPECTED[type];
  const check = z.custom<DynamoValue>(
    (v) => v === null ? !required : expected.ok(v as DynamoValue),
    {
      error: (issue) =>
        issue.input === undefined
          ? "is missing"
          : `expected ${expected.want}, got ${describe(issue.input as DynamoValue)}`,
    },
  );
  return required ? check : check.optional();
}

const itemSchemas = new Map<TableSpec, z.ZodType<Record<string, DynamoValue>>>();
const keySchemas = new Map<TableSpec, z.ZodType<Record<string, DynamoValue>>>();

/** The schema of one table's items (made once per table). */
export function itemSchema(spec: TableSpec): z.ZodType<Record<string, DynamoValue>> {
  const known = itemSchemas.get(spec);
  if (known) return known;
  const shape: Record<string, z.ZodType> = {};
  for (const column of Object.values(spec.columns)) {
    for (const name of [column.from].flat()) shape[name] = valueOf(column.type, false);
  }
  for (const key of spec.sourceKey) {
    shape[key.name] = valueOf(key.type === "S" ? "text" : "numeric", true);
  }
  if (spec.deletedFlag) {
    shape[spec.deletedFlag] = z.custom<DynamoValue>(
      (v) => v === null || typeof v === "boolean",
      {
        error: (issue) => `expected a boolean (BOOL), got ${describe(issue.input as DynamoValue)}`,
      },
    ).optional();
  }
  const schema = z.object(shape).loose() as unknown as z.ZodType<Record<string, DynamoValue>>;
  itemSchemas.set(spec, schema);
  return schema;
}

/** The schema of the key attributes alone (what a REMOVE record carries in Keys). */
export function keySchema(spec: TableSpec): z.ZodType<Record<string, DynamoValue>> {
  const known = keySchemas.get(spec);
  if (known) return known;
  const shape: Record<string, z.ZodType> = {};
  for (const key of spec.sourceKey) {
    shape[key.name] = valueOf(key.type === "S" ? "text" : "numeric", true);
  }
  const schema = z.object(shape).loose() as unknown as z.ZodType<Record<string, DynamoValue>>;
  keySchemas.set(spec, schema);
  return schema;
}

/** Turns zod's issues into one line: `attribute NAME: PROBLEM; ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `attribute ${issue.path.join(".")}: ${issue.message}`)
    .join("; ");
}
