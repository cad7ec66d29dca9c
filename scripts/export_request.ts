/**
 * Asking DynamoDB for a point-in-time export of a table and waiting for it
 * (docs/sync-semantics.md, "Backfills from an export").
 *
 * An export needs point-in-time recovery (PITR) on its table
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport_Requesting.html):
 * {@link requirePointInTimeRecovery} checks first and, when it is off, refuses with the
 * command that turns it on, rather than letting ExportTableToPointInTime fail. The
 * request carries a ClientToken, so a retried request (the SDK's, after a timeout) joins
 * the export it started instead of starting another: the token is valid for 8 hours
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html).
 * Whether an ended export the token answers is the request's own is told on DynamoDB's
 * clock alone: its export time against the answer's HTTP `Date` ({@link requestExport}).
 * {@link waitForExport} polls DescribeExport until the export is COMPLETED, reporting
 * progress, and turns FAILED into an error naming the table, the export and AWS's reason.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  DescribeContinuousBackupsCommand,
  DescribeExportCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  type ExportDescription,
  ExportTableToPointInTimeCommand,
} from "@aws-sdk/client-dynamodb";
import type { ClockReading } from "../functions-shared/read_stamp.ts";
import { sendReadingClock } from "./dynamo_clock.ts";

/** An export that could not be had, naming the table and why. */
export class ExportRequestError extends Error {
  constructor(table: string, problem: string) {
    super(`export of ${table}: ${problem}`);
    this.name = "ExportRequestError";
  }
}

/** An export still running when the wait for it ran out (the export goes on). */
export class ExportStillRunning extends ExportRequestError {
  constructor(table: string, problem: string) {
    super(table, problem);
    this.name = "ExportStillRunning";
  }
}

/** Where an export goes. */
export interface ExportTarget {
  bucket: string;
  /** The export's prefix in the bucket ("" for none). */
  prefix: string;
}

/**
 * Refuses, with the command that turns it on, a table (in `client`'s region) whose
 * point-in-time recovery is not on: an export of it would fail. Called before any wait
 * for an export (scripts/export_to_wait_for.ts), and again as the export is asked for.
 */
export async function requirePointInTimeRecovery(
  client: DynamoDBClient,
  table: string,
): Promise<void> {
  const region = await client.config.region();
  const backups = await client.send(new DescribeContinuousBackupsCommand({ TableName: table }));
  const pitr = backups.ContinuousBackupsDescription?.PointInTimeRecoveryDescription
    ?.PointInTimeRecoveryStatus;
  if (pitr !== "ENABLED") {
    throw new ExportRequestError(
      table,
      `point-in-time recovery is ${pitr ?? "off"}; an export needs it on: ` +
        `aws dynamodb update-continuous-backups --region ${region} --table-name ${table} ` +
        `--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true`,
    );
  }
}

/**
 * Asks for an export of `table` (in `client`'s region) to `target`, as of now; answers
 * the export's ARN. `clientToken` names this request for retries (e.g. the backfill job's
 * id and the table).
 */
export async function requestExport(
  client: DynamoDBClient,
  table: string,
  target: ExportTarget,
  clientToken: string,
): Promise<string> {
  await requirePointInTimeRecovery(client, table);
  const described = await client.send(new DescribeTableCommand({ TableName: table }));
  const request = (token: string) =>
    sendReadingClock(
      new ExportTableToPointInTimeCommand({
        TableArn: described.Table!.TableArn!,
        S3Bucket: target.bucket,
        ...(target.prefix ? { S3Prefix: target.prefix } : {}),
        ExportFormat: "DYNAMODB_JSON",
        ExportType: "FULL_EXPORT",
        ClientToken: token,
      }),
      (command) => client.send(command),
    );
  // A token DynamoDB saw in the last 8 hours, with these parameters, answers that export
  // (API reference, ExportTableToPointInTime, ClientToken): one still in progress is the
  // one a run interrupted during its wait asked for, and is joined; one that has ended
  // holds the table as it was then, so a new one is asked for, under a token of its own,
  // derived from the ended export's (a run interrupted while it waits for the new one
  // derives the same, and joins it). That token may answer an ended export too (a
  // backfill asked for earlier in the hour): the chain goes on to the first export that
  // is not.
  let token = clientToken;
  for (let hop = 0; hop <= MAX_ENDED_EXPORTS; hop++) {
    const { output, clock } = await request(token);
    const export_ = output.ExportDescription!;
    if (export_.ExportStatus === "IN_PROGRESS") return export_.ExportArn!;
    // One not in progress without an export time (AWS gives one, though the reference
    // marks every field optional) cannot be told apart from an earlier backfill's: a
    // failed one holds no items and is asked for again, under the next token; any
    // other is refused, as a missing Date is below, rather than taken for its own and its
    // items, perhaps an earlier export's, loaded.
    if (export_.ExportTime === undefined) {
      if (export_.ExportStatus === "FAILED") {
        token = nextToken(clientToken, export_.ExportArn);
        continue;
      }
      throw new ExportRequestError(
        table,
        `export ${export_.ExportArn} is not in progress (${export_.ExportStatus ?? "no status"}) ` +
          "and DynamoDB gave no export time, so whether it is this request's own or an " +
          "earlier one's cannot be told (AWS's answers always carry one; a stand-in must " +
          "send it too)",
      );
    }
    // Without DynamoDB's clock the request fails, naming why: taking the export for its own
    // could hand this backfill an earlier one's export, and taking it for stale would
    // walk the chain to its end and blame the prefix.
    if (!clock) {
      throw new ExportRequestError(
        table,
        `export ${export_.ExportArn} has ended (${export_.ExportStatus}), and DynamoDB's ` +
          "answer carried no Date that parses, so whether it is this request's own or an " +
          "earlier one's cannot be told on DynamoDB's clock (AWS's answers always carry " +
          "one; a stand-in must send it too)",
      );
    }
    if (export_.ExportTime.getTime() >= askedAtOnDynamo(clock) - STALE_EXPORT_MS) {
      return export_.ExportArn!;
    }
    token = nextToken(clientToken, export_.ExportArn);
  }
  throw new ExportRequestError(
    table,
    `${MAX_ENDED_EXPORTS} exports asked for with this bucket and prefix in the last 8 hours ` +
      "have ended; pass --prefix to ask for one under a prefix of its own",
  );
}

/** The token of the export asked for after the ended `exportArn` (see {@link requestExport}). */
function nextToken(clientToken: string, exportArn: string | undefined): string {
  const digest = createHash("sha256").update(exportArn ?? "").digest("hex");
  return `${clientToken.slice(0, 47)}-${digest.slice(0, 16)}`;
}

/** Ended exports a request walks past (see {@link requestExport}) before it gives up. */
const MAX_ENDED_EXPORTS = 50;

/**
 * How much older than its request an export that has ended may be and still be its own,
 * both on DynamoDB's clock ({@link askedAtOnDynamo}): a few seconds, for how DynamoDB
 * may round an export time it picks. On AWS an export takes minutes, so one that has
 * ended is never this young; the local stand-in's end at once. A wider margin handed a
 * second backfill asked for within it the first one's export, which cannot heal what
 * went wrong after it (a row lost here since).
 */
const STALE_EXPORT_MS = 10_000;

/**
 * When a request was asked, on DynamoDB's clock: its answer's `Date` less the round trip
 * (as functions-shared/read_stamp.ts stamps a Scan page). DynamoDB wrote its `Date`
 * (truncated to the second) after the request reached it, so at most the round trip after
 * the request left: `Date` less the round trip (the whole send's, SDK retries included) is
 * no later than the request left, on DynamoDB's clock, and less than the round trip and a
 * second earlier. The export that request made (or an attempt of it that the SDK retried)
 * has an export time no earlier. Nothing compares this machine's wall clock with
 * DynamoDB's: when something did, a clock 10 s ahead of AWS's made every fresh ended
 * export look stale (the chain asked for 50 and failed), and one behind took an earlier
 * backfill's export for its own, whose items cannot heal what went wrong after it.
 */
function askedAtOnDynamo(clock: ClockReading): number {
  return clock.serverMs - Math.max(0, clock.roundTripMs);
}

/** What {@link waitForExport} needs besides the client. */
export interface WaitOptions {
  /** Called after each poll that finds the export still running. */
  progress?: (description: ExportDescription) => void;
  /**
   * The longest wait between polls (ms): the waits start at 1 s and double up to it.
   * Exports take minutes on AWS, so the default is 10 s.
   */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Gives up after this long (ms); the default is 24 hours. AWS gives no bound on an
   * export's time, and a large table's takes hours; the export goes on after the wait
   * gives up (scripts/export_backfill.ts takes it up when run again).
   */
  timeoutMs?: number;
  now?: () => number;
}

/** Waits for export `exportArn` of `table` to complete; answers its description. */
export async function waitForExport(
  client: DynamoDBClient,
  table: string,
  exportArn: string,
  options: WaitOptions = {},
): Promise<ExportDescription> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const started = now();
  const deadline = started + (options.timeoutMs ?? 24 * 3600_000);
  for (let poll = 0;; poll++) {
    const { ExportDescription: d } = await client.send(
      new DescribeExportCommand({ ExportArn: exportArn }),
    );
    if (d?.ExportStatus === "COMPLETED") return d;
    if (d?.ExportStatus === "FAILED") {
      throw new ExportRequestError(
        table,
        `export ${exportArn} failed: ${d.FailureCode ?? "no code"}: ${d.FailureMessage ?? ""}`,
      );
    }
    if (now() >= deadline) {
      throw new ExportStillRunning(
        table,
        `export ${exportArn} is still ${d?.ExportStatus} after ${
          Math.round((now() - started) / 60_000)
        } minutes of waiting`,
      );
    }
    options.progress?.(d ?? {});
    await sleep(Math.min(options.pollMs ?? 10_000, 1000 * 2 ** poll));
  }
}
