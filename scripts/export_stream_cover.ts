/**
 * Whether a table's DynamoDB stream covers an export of it: every change after the time
 * the export's items are taken as read (its export time less the two minutes within which
 * they may lie, functions-shared/export_manifest.ts) must reach the table through the stream,
 * or its rows would stand for changes that never come.
 *
 * @module
 */

import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { EXPORT_WINDOW_MS } from "../functions-shared/export_manifest.ts";
import { STREAM_RETENTION_MS } from "../functions-shared/stream_timing.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { sendReadingClock } from "./dynamo_clock.ts";

/**
 * How much younger than the stream's retention (24 h) an export must be for the stream
 * alone to vouch for it: its read time's records are trimmed 24 h after it, and the
 * mapping may lag, DynamoDB's clock and this one's differ, and the load takes a while.
 */
export const STREAM_COVER_MARGIN_MS = 3600_000;

/**
 * Whether the webhook applied a record of stream `streamArn` at or before `at` (its
 * notes, `sync.stream_batches_applied`, kept 48 h): the mapping was delivering it then.
 */
export type DeliveredBy = (streamArn: string, at: Date) => Promise<boolean>;

/** {@link DeliveredBy} from the database's notes. */
export async function streamDeliveredBy(
  sql: postgres.Sql,
  streamArn: string,
  at: Date,
): Promise<boolean> {
  const [row] = await sql`
    select exists (select from sync.stream_batches_applied
                   where stream_arn = ${streamArn} and applied_at <= ${at}) as delivered`;
  return row.delivered === true;
}

/**
 * A pause, and this machine's clock for when DynamoDB's answer carries no `Date`, for
 * {@link waitForStreamToCover} (tests give their own).
 */
export interface StreamClock {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * When a stream began, from its label (DescribeTable's `LatestStreamLabel`, a time
 * without a zone, in UTC); NaN when the label is no time.
 */
export function streamBegan(label: string): number {
  return Date.parse(/Z|[+-]\d\d:\d\d$/.test(label) ? label : `${label}Z`);
}

/**
 * Refuses an export older than the table's stream: the changes made between the time its
 * items are taken as read (`readAt`: its export time less the two minutes within which
 * an export's items may lie, export_manifest.ts) and the stream's start are in neither, and
 * its rows, stamped then, would stand for them. The stream's label is the time it was enabled
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html,
 * LatestStreamLabel). A table with no stream is refused too: every change after the
 * export would be lost while the job ends done and the table is reported whole; with
 * `withoutStream` (`--without-stream`) it is loaded, named in the log.
 *
 * An export read more than the stream's 24 h ago (less {@link STREAM_COVER_MARGIN_MS}, on
 * DynamoDB's clock) is refused too, unless `deliveredBy` says the webhook applied records
 * of the stream at or before its read time: the stream no longer holds the changes made
 * just after it, which reached the table only if the mapping delivered them back then
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html: "All
 * data in DynamoDB Streams is subject to a 24-hour lifetime").
 */
export async function streamCoversExport(
  dynamo: DynamoDBClient,
  spec: TableSpec,
  arn: string,
  readAt: Date,
  log: (line: string) => void,
  deliveredBy: DeliveredBy,
  withoutStream = false,
): Promise<void> {
  const { output, clock } = await sendReadingClock(
    new DescribeTableCommand({ TableName: spec.sourceTable }),
    (command) => dynamo.send(command),
  );
  const table = output.Table;
  const label = table?.LatestStreamLabel;
  if (!table?.StreamSpecification?.StreamEnabled || !label) {
    const what = `${spec.sourceTable} has no stream: nothing after the export's read time ` +
      `(${readAt.toISOString()}) would reach ${spec.targetTable}`;
    if (!withoutStream) {
      throw new Error(
        `export backfill of ${spec.sourceTable}: ${what}, and the table would be reported ` +
          "whole; turn on its stream (NEW_AND_OLD_IMAGES) and its mapping, then ask for a new " +
          "export, or pass --without-stream to load the export alone",
      );
    }
    log(`${spec.targetTable}: ${what} until its stream and its mapping are on (--without-stream)`);
    return;
  }
  const since = streamBegan(label);
  if (!Number.isFinite(since)) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: its stream's label ${JSON.stringify(label)} is ` +
        "not the time the stream was enabled, so whether the export is covered cannot be told",
    );
  }
  if (since > readAt.getTime()) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: export ${arn} holds items as they were from ` +
        `${readAt.toISOString()} (its read time, up to ${EXPORT_WINDOW_MS / 1000} s before ` +
        `its export time), before the table's stream began (${label}): the changes between ` +
        "them are in neither; ask for a new export (without --export-arn)",
    );
  }
  // DynamoDB's time when it answered is at least its Date (truncated to the second).
  const dynamoNow = clock?.serverMs ?? Date.now();
  const age = dynamoNow - readAt.getTime();
  const streamArn = table.LatestStreamArn ?? "(no stream ARN)";
  if (age > STREAM_RETENTION_MS - STREAM_COVER_MARGIN_MS && !await deliveredBy(streamArn, readAt)) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: export ${arn} holds items as they were from ` +
        `${readAt.toISOString()}, ${(age / 3600_000).toFixed(1)} h ago, and the table's ` +
        `stream keeps its records 24 h: the changes made just after that have left it, and ` +
        `the webhook applied no record of the stream ${streamArn} at or before that time ` +
        "(sync.stream_batches_applied, kept 48 h), so they may be in neither; ask for a new " +
        "export (without --export-arn)",
    );
  }
}

/**
 * What is added to the export window before asking for an export: the export's time may
 * come a few seconds after the request's answer (as DynamoDB picks it, export_request.ts).
 */
const STREAM_AGE_MARGIN_MS = 5_000;

/**
 * Before a new export is asked for: waits until the table's stream has run for longer
 * than an export's items may lie before its time (export_manifest.ts, EXPORT_WINDOW_MS),
 * and a few seconds more, on DynamoDB's clock: the stream's label against the HTTP `Date`
 * of the DescribeTable that gave it (dynamo_clock.ts; without one, this machine's clock).
 * An export asked for sooner would be refused once made ({@link streamCoversExport}),
 * after minutes or hours of waiting for it. A table whose stream is off or whose label is
 * no time is left to that check, which names the problem.
 */
export async function waitForStreamToCover(
  dynamo: DynamoDBClient,
  spec: TableSpec,
  log: (line: string) => void,
  clock: StreamClock = {},
): Promise<void> {
  const { output, clock: dynamoClock } = await sendReadingClock(
    new DescribeTableCommand({ TableName: spec.sourceTable }),
    (command) => dynamo.send(command),
  );
  const table = output.Table;
  const label = table?.LatestStreamLabel;
  if (!table?.StreamSpecification?.StreamEnabled || !label) return;
  const since = streamBegan(label);
  // DynamoDB's time when it answered is at least its Date (truncated to the second).
  const dynamoNow = dynamoClock?.serverMs ?? (clock.now ?? Date.now)();
  const waitMs = since + EXPORT_WINDOW_MS + STREAM_AGE_MARGIN_MS - dynamoNow;
  if (!Number.isFinite(waitMs) || waitMs <= 0) return;
  log(
    `${spec.targetTable}: its stream began at ${label}; an export's items may be up to ` +
      `${EXPORT_WINDOW_MS / 1000} s older than its time, so the export is asked for in ` +
      `${Math.ceil(waitMs / 1000)} s, once the stream covers them`,
  );
  await (clock.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))))(waitMs);
}
