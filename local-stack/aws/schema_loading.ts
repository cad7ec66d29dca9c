/**
 * The key schemas a table operation needs (key_schema.ts), read before the DynamoDB proxy
 * (local-stack/aws/proxy.ts) goes on with it, or the answer it is refused with when one
 * cannot be read: what needs a schema is refused (fail closed), not let through
 * unthrottled or unrecorded.
 *
 * @module
 */

import { internalServerError } from "./errors.ts";
import { awsJsonText } from "./json_answer.ts";
import { type KeySchemas, SchemaUnknown } from "./key_schema.ts";
import { scopeOf } from "./scope.ts";

/** What {@link loadKeySchemas} needs. */
export interface SchemaLoading {
  /** The schemas known, by `scope/table`, which it adds to. */
  keySchemas: KeySchemas;
  /** DescribeTable of `table` with a client's `headers`: its `Table`, or it throws. */
  describe: (headers: Headers, table: string) => Promise<unknown>;
  log: (line: string) => void;
}

/**
 * Reads the key schemas of `tables` (of the request's scope, from its `headers`);
 * undefined once known (or the table does not exist), or the HTTP 500 to answer
 * `operation` with when one cannot be read (logged).
 */
export async function loadKeySchemas(
  { keySchemas, describe, log }: SchemaLoading,
  headers: Headers,
  tables: string[],
  operation: string,
): Promise<Response | undefined> {
  try {
    await keySchemas.load(scopeOf(headers), tables, (table) => describe(headers, table));
    return undefined;
  } catch (error) {
    if (!(error instanceof SchemaUnknown)) throw error;
    log(`${operation} ${error.table}: ${error.message}; refused (not forwarded)`);
    return awsJsonText(500, internalServerError(operation, error.table, error.message));
  }
}
