/**
 * A DynamoDB `UpdateItem` built one attribute at a time, on condition of the item as it
 * was read (write_back_update.ts builds the write-back's with it):
 * - an attribute written is SET to its value, or REMOVEd when the value is undefined,
 *   unless the item holds that already (nothing is written for it);
 * - every attribute written or pinned is held by the condition to the value read
 *   (`attribute_not_exists` when the item had none), so a change racing the update fails
 *   it instead of being overwritten;
 * - the item's key attributes must exist: an update never creates an item.
 *
 * Each attribute gets one alias (`#a0`, `#a1`, ...) and each value one placeholder
 * (`:v0`, ...), in the order they are first named.
 *
 * @module
 */

import type { AttributeValue, UpdateItemInput } from "./dynamo_commands.ts";
import type { AttributeMap } from "./dynamo_decoder.ts";
import { sameAttribute } from "./write_back_values.ts";

/** An update of one item read as `raw`, on condition that it still holds what was read. */
export class ConditionalUpdate {
  readonly #raw: AttributeMap;
  /** Each attribute's alias, in the order they were first named. */
  readonly #aliases = new Map<string, string>();
  readonly #values: Record<string, AttributeValue> = {};
  readonly #sets: string[] = [];
  readonly #removes: string[] = [];
  readonly #conditions: string[] = [];
  readonly #pinned = new Set<string>();

  /** `raw`: the item as it was read (consistently), in DynamoDB's JSON. */
  constructor(raw: AttributeMap) {
    this.#raw = raw;
  }

  /** Writes `attribute` (REMOVE when `value` is undefined) and pins it to what was read. */
  write(attribute: string, value: AttributeValue | undefined): void {
    const alias = this.#alias(attribute);
    const held = value === undefined
      ? this.#raw[attribute] === undefined
      : sameAttribute(value, this.#raw[attribute]);
    if (held) {
      // Nothing to write.
    } else if (value === undefined) this.#removes.push(alias);
    else {
      const v = `:v${Object.keys(this.#values).length}`;
      this.#values[v] = value;
      this.#sets.push(`${alias} = ${v}`);
    }
    this.pin(attribute);
  }

  /** Adds the condition that `attribute` still holds what was read (once per attribute). */
  pin(attribute: string): void {
    if (this.#pinned.has(attribute)) return;
    this.#pinned.add(attribute);
    const alias = this.#alias(attribute);
    const read = this.#raw[attribute];
    if (read === undefined) this.#conditions.push(`attribute_not_exists(${alias})`);
    else {
      const b = `:v${Object.keys(this.#values).length}`;
      // A NULL is held by its type: AWS's comparators list no NULL operand, while
      // attribute_type(path, NULL) is documented (Developer Guide, "Condition and filter
      // expressions, operators, and functions", attribute_type).
      const isNull = read.NULL !== undefined;
      this.#values[b] = isNull ? { S: "NULL" } : read;
      this.#conditions.push(isNull ? `attribute_type(${alias}, ${b})` : `${alias} = ${b}`);
    }
  }

  /** Whether the update names `attribute` already, written or pinned. */
  names(attribute: string): boolean {
    return this.#aliases.has(attribute);
  }

  /** Whether the item holds every value written: the update would change nothing. */
  changesNothing(): boolean {
    return this.#sets.length === 0 && this.#removes.length === 0;
  }

  /** The `UpdateItem` of `key` in `table`: its key attributes must exist. */
  input(table: string, key: AttributeMap): UpdateItemInput {
    const conditions = [...this.#conditions];
    for (const name of Object.keys(key)) {
      conditions.unshift(`attribute_exists(${this.#alias(name)})`);
    }
    const update = [
      this.#sets.length ? `SET ${this.#sets.join(", ")}` : "",
      this.#removes.length ? `REMOVE ${this.#removes.join(", ")}` : "",
    ].filter(Boolean).join(" ");
    return {
      TableName: table,
      Key: key,
      UpdateExpression: update,
      ConditionExpression: conditions.join(" AND "),
      ExpressionAttributeNames: Object.fromEntries(
        [...this.#aliases].map(([attribute, alias]) => [alias, attribute]),
      ),
      ...(Object.keys(this.#values).length
        ? { ExpressionAttributeValues: { ...this.#values } }
        : {}),
      // No ReturnValues of any kind: the writer's IAM policy admits only NONE and
      // UPDATED_OLD (infrastructure/terraform), and none is needed: after a failed
      // condition the item is read again.
    };
  }

  #alias(attribute: string): string {
    let alias = this.#aliases.get(attribute);
    if (alias === undefined) {
      alias = `#a${this.#aliases.size}`;
      this.#aliases.set(attribute, alias);
    }
    return alias;
  }
}
