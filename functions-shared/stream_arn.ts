/**
 * What a stream record's `eventSourceARN` says about it: the DynamoDB table it names,
 * that table's registry entry, and why the ARN cannot be that table's (another region).
 * A batch's records share one stream's ARN, and reading it (a regular expression, the
 * registry's search, the region's check) was a microsecond of every record's mapping, so
 * the readings of the few ARNs an isolate sees are kept.
 *
 * @module
 */

import {
  arnRegionProblem,
  bySourceTable,
  tableNameFromArn,
  type TableSpec,
} from "./table_registry.ts";

/** What an ARN says (see the module's doc). */
export interface StreamArnReading {
  /** The table the ARN names, or null when it names none. */
  sourceTable: string | null;
  /** The registry's entry of that table, if registered. */
  spec: TableSpec | undefined;
  /** Why the ARN cannot be the registered table's (arnRegionProblem), or null. */
  elsewhere: string | null;
}

/** The ARNs read lately; past 64 (a few streams feed an isolate) it starts again. */
const READINGS = new Map<string, StreamArnReading>();

/** Reads `arn` (kept for the next records of its stream). */
export function readStreamArn(arn: string): StreamArnReading {
  let reading = READINGS.get(arn);
  if (reading === undefined) {
    const sourceTable = tableNameFromArn(arn) ?? null;
    const spec = sourceTable ? bySourceTable(sourceTable) : undefined;
    reading = { sourceTable, spec, elsewhere: spec ? arnRegionProblem(spec, arn) : null };
    if (READINGS.size >= 64) READINGS.clear();
    READINGS.set(arn, reading);
  }
  return reading;
}
