/**
 * The write-back of a catch-all column (the JSON object of a table's attributes that no
 * other column maps, table_registry.ts): an edit goes back key by key, each key to its
 * attribute, and only the keys it changes are written or compared with the item (any
 * other key may have changed in DynamoDB since the row was built: both stand). Only the
 * keys of the table's `catchAllAttributes` may be written.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import type { TableSpec } from "./table_registry.ts";
import { jsonToAttribute, sameJsonValue } from "./write_back_values.ts";

/** The keys that an edit of a catch-all from `before` to `after` adds, removes or changes, sorted. */
export function editedKeys(before: unknown, after: unknown): string[] {
  const [was, is] = [asObject(before), asObject(after) ?? {}];
  return [...new Set([...Object.keys(was ?? {}), ...Object.keys(is)])].sort().filter(
    (name) =>
      !(was && Object.hasOwn(was, name) && Object.hasOwn(is, name) &&
        sameJsonValue(was[name], is[name])),
  );
}

/** Whether two catch-all objects hold the same of `names` (each present in both or in neither). */
export function sameKeys(a: unknown, b: unknown, names: string[]): boolean {
  const [x, y] = [asObject(a) ?? {}, asObject(b) ?? {}];
  return names.every((name) =>
    Object.hasOwn(x, name) === Object.hasOwn(y, name) &&
    (!Object.hasOwn(x, name) || sameJsonValue(x[name], y[name]))
  );
}

/**
 * Writes the catch-all's `edited` keys ({@link editedKeys}) as the edit leaves them in
 * `after`, each to its attribute (the item's value `item[name]` shows the type to keep),
 * through `write`; returns a refusal or undefined.
 */
export function writeCatchAll(
  spec: TableSpec,
  edited: string[],
  after: unknown,
  item: Record<string, unknown>,
  write: (attribute: string, value: AttributeValue | undefined) => void,
): string | undefined {
  const is = asObject(after);
  if (is === undefined) return `${spec.catchAll} must stay a JSON object`;
  for (const name of edited) {
    if (!spec.catchAllAttributes.includes(name)) {
      return `${spec.catchAll}.${name} is not an attribute the write-back may write ` +
        `(${spec.targetTable} writes back ${
          spec.catchAllAttributes.length ? spec.catchAllAttributes.join(", ") : "no catch-all key"
        })`;
    }
    write(
      name,
      Object.hasOwn(is, name)
        ? jsonToAttribute(is[name], item[name] as never, `${spec.catchAll}.${name}`)
        : undefined,
    );
  }
  return undefined;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}
