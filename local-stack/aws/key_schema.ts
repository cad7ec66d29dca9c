/**
 * A table's primary key as DynamoDB checks a request's keys against it: the key
 * attributes' names from DescribeTable's `KeySchema` and their types from its
 * `AttributeDefinitions` (S, N or B). What the proxy needs to tell a BatchWriteItem that
 * DynamoDB refuses whole (batch_refusal.ts) from one it may write in part.
 *
 * The rules, from AWS's API reference: a PutRequest's Item and a DeleteRequest's Key: "All
 * of the table's primary key attributes must be specified, and their data types must
 * match those of the table's key schema"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutRequest.html,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteRequest.html);
 * a Key is "the primary key of the item to delete", and an attribute more is a key that
 * does not match the schema (AWS knowledge center, "provided key element does not match
 * the schema", https://repost.aws/knowledge-center/dynamodb-provided-key-element-error:
 * "There's an unnecessary additional key"; DynamoDB Local 1.25.1 answers
 * "The number of conditions on the keys is invalid"); "Attribute values of type String and
 * Binary must have a length greater than zero if the attribute is used as a key
 * attribute for a table or index" (API reference, PutItem,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html); "For
 * a partition key, the limit is 2048 bytes and for a sort key, the limit is 1024 bytes"
 * (API reference, BatchWriteItem). Numbers are compared as numbers: DynamoDB Local takes
 * `1` and `1.0` for one key ("Provided list of item keys contains duplicates").
 *
 * Unknown is not missing ({@link KeySchemas}): a table DynamoDB says does not exist has no
 * schema, and a batch on it goes on to be refused as AWS refuses it; but a DescribeTable
 * that fails otherwise says nothing of the table, and the proxy must then refuse what
 * needs the schema (fail closed) rather than let a batch through unthrottled.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { UpstreamError } from "./upstream.ts";

type Body = Record<string, unknown>;

/** A key attribute: its name and its scalar type. */
export interface KeyAttribute {
  name: string;
  type: "S" | "N" | "B";
}

/** The most bytes of a partition key's value and of a sort key's (AWS's). */
const PARTITION_KEY_BYTES = 2048;
const SORT_KEY_BYTES = 1024;

/**
 * A table's key attributes, partition key first, from DescribeTable's `Table`; undefined
 * when its KeySchema or a key attribute's definition is missing.
 */
export function keySchemaOf(table: unknown): KeyAttribute[] | undefined {
  const { KeySchema, AttributeDefinitions } = (table ?? {}) as Body;
  if (!Array.isArray(KeySchema) || !Array.isArray(AttributeDefinitions)) return undefined;
  const types = new Map(
    (AttributeDefinitions as { AttributeName: string; AttributeType: string }[])
      .map((d) => [d.AttributeName, d.AttributeType]),
  );
  const schema = [...KeySchema as { AttributeName: string; KeyType: string }[]]
    .sort((a, b) => (a.KeyType === "HASH" ? 0 : 1) - (b.KeyType === "HASH" ? 0 : 1))
    .map((k) => ({ name: k.AttributeName, type: types.get(k.AttributeName) }));
  const typed = (k: { type?: string }): k is KeyAttribute => ["S", "N", "B"].includes(k.type!);
  return schema.length > 0 && schema.every(typed) ? schema : undefined;
}

/**
 * A number's canonical text (digits without leading or trailing zeros, and an exponent),
 * the same for every way of writing one number; undefined when DynamoDB takes `text` for
 * no number: not decimal, more than 38 significant digits, or a magnitude outside 1E-130
 * to 9.99…E+125 (Developer Guide, "Supported data types and naming rules", Number,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
 */
export function canonicalNumber(text: string): string | undefined {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match || (match[2] === "" && (match[3] ?? "") === "")) return undefined;
  const [, sign, whole, fraction = "", exponent = "0"] = match;
  const significant = (whole + fraction).replace(/^0+/, "");
  if (significant === "") return "0";
  const digits = significant.replace(/0+$/, "");
  const power = Number(exponent) - fraction.length + (significant.length - digits.length);
  const magnitude = power + digits.length - 1; // of the first digit
  if (digits.length > 38 || magnitude < -130 || magnitude > 125) return undefined;
  return `${sign === "-" ? "-" : ""}${digits}e${power}`;
}

/**
 * Whether `text` is base64 as DynamoDB takes it: the standard alphabet, padded, nothing
 * else (DynamoDB Local 1.25.1 refuses `AA`, `A A==`, `-_-_` and a line break with a 500,
 * where `atob` takes the first two).
 */
export function isBase64(text: unknown): boolean {
  return typeof text === "string" &&
    /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text);
}

/** The bytes of a key value of `type` (S: UTF-8; B: decoded; N: not limited here). */
function valueBytes(type: KeyAttribute["type"], value: string): number {
  if (type === "S") return new TextEncoder().encode(value).length;
  if (type === "B") return atob(value).length;
  return 0;
}

/**
 * Why DynamoDB refuses `key` as a key of a table of `schema` (undefined: it takes it):
 * every key attribute there, of its type, S and B not empty, within the length limits, N
 * a number; with `exact` (a DeleteRequest's Key), no other attribute.
 */
export function keyProblem(key: Item, schema: KeyAttribute[], exact: boolean): string | undefined {
  if (!key || typeof key !== "object") return "no key";
  if (exact && Object.keys(key).length !== schema.length) {
    return `a key holds exactly ${schema.map((k) => k.name).join(" and ")}`;
  }
  for (const [index, { name, type }] of schema.entries()) {
    const value = key[name];
    if (!value || typeof value !== "object") return `${name} is missing`;
    const entries = Object.entries(value);
    if (entries.length !== 1 || entries[0][0] !== type || typeof entries[0][1] !== "string") {
      return `${name} is not of type ${type}`;
    }
    const text = entries[0][1];
    if (type === "N") {
      if (canonicalNumber(text) === undefined) return `${name} is not a number`;
      continue;
    }
    if (text.length === 0) return `${name} is empty`;
    if (type === "B" && !isBase64(text)) return `${name} is not base64`;
    const bytes = valueBytes(type, text);
    if (bytes > (index === 0 ? PARTITION_KEY_BYTES : SORT_KEY_BYTES)) return `${name} is too long`;
  }
  return undefined;
}

/** How many times a table is described before its schema is given up as unknown. */
export const DESCRIBE_ATTEMPTS = 3;

/** A table whose key schema could not be read: DescribeTable failed, or said nothing of it. */
export class SchemaUnknown extends Error {
  constructor(readonly table: string, cause: unknown) {
    super(
      `the key schema of table ${table} could not be read (DescribeTable, ${DESCRIBE_ATTEMPTS} ` +
        `times): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = "SchemaUnknown";
  }
}

/**
 * The key schemas of the tables met, by `scope/table`, read once each with DescribeTable
 * (`describe`, which answers its `Table` or throws DynamoDB Local's error).
 */
export class KeySchemas {
  #known = new Map<string, KeyAttribute[]>();

  /** The key attributes of `scope/table`; undefined until loaded, or for no such table. */
  get(scopedTable: string): KeyAttribute[] | undefined {
    return this.#known.get(scopedTable);
  }

  /**
   * Reads the schemas of `tables` (of `scope`) not known yet. A table DynamoDB answers
   * ResourceNotFoundException for stays without one; any other failure, or an answer with
   * no key schema, is tried again, {@link DESCRIBE_ATTEMPTS} times in all, then thrown as
   * {@link SchemaUnknown}.
   */
  async load(
    scope: string,
    tables: string[],
    describe: (table: string) => Promise<unknown>,
  ): Promise<void> {
    for (const table of tables) {
      const name = `${scope}/${table}`;
      let cause: unknown;
      for (let attempt = 0; attempt < DESCRIBE_ATTEMPTS && !this.#known.has(name); attempt++) {
        try {
          const schema = keySchemaOf(await describe(table));
          if (schema) this.#known.set(name, schema);
          else cause = new Error("DescribeTable answered no key schema");
        } catch (error) {
          cause = error;
          if (error instanceof UpstreamError && error.type === "ResourceNotFoundException") {
            cause = undefined; // no such table: no schema to know
            break;
          }
        }
      }
      if (!this.#known.has(name) && cause !== undefined) throw new SchemaUnknown(table, cause);
    }
  }
}
