/**
 * The export a backfill from an export waits for when none is named
 * (scripts/export_backfill.ts): the one an earlier run asked for and no job has loaded
 * (`sync.export_requests`), taken up while DynamoDB still makes or has it; else a new one,
 * asked for once the table's stream covers it, and remembered before the wait begins.
 *
 * @module
 */

import { DescribeExportCommand } from "@aws-sdk/client-dynamodb";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import type { ExportBackfillDeps, ExportSource } from "./export_backfill.ts";
import { requestExport, requirePointInTimeRecovery } from "./export_request.ts";
import { waitForStreamToCover } from "./export_stream_cover.ts";

/**
 * The export to wait for when none is named: the newest one an earlier run asked for
 * and no job has loaded (`sync.export_requests`: a run stopped while it waited, in any
 * hour), unless it failed or AWS no longer knows it; else a new one, remembered before
 * the wait begins.
 */
export async function exportToWaitFor(
  deps: ExportBackfillDeps,
  spec: TableSpec,
  source: ExportSource,
  token: string,
): Promise<string> {
  const dynamo = deps.dynamo(spec.region);
  const [{ arn: earlier }] = await deps.sql<{ arn: string | null }[]>`
    select sync.export_request_to_resume(${spec.sourceTable}, ${source.bucket},
      ${source.prefix}) as arn`;
  if (earlier) {
    const described = await dynamo.send(new DescribeExportCommand({ ExportArn: earlier }))
      .then((answer) => answer.ExportDescription, (error) => {
        if ((error as Error).name === "ExportNotFoundException") return undefined;
        throw error;
      });
    const status = described?.ExportStatus;
    if (status === "IN_PROGRESS" || status === "COMPLETED") {
      deps.log(
        `${spec.targetTable}: taking up export ${earlier}, asked for by an earlier run (${status})`,
      );
      return earlier;
    }
    deps.log(
      `${spec.targetTable}: export ${earlier}, asked for by an earlier run, ` +
        (status === undefined
          ? "is unknown to DynamoDB"
          : `is ${status}${described?.FailureMessage ? ` (${described.FailureMessage})` : ""}`) +
        ": asking for a new one",
    );
  }
  // Refused at once when point-in-time recovery is off, not after the wait: the stream
  // of a table made a minute ago makes the export wait up to two minutes.
  await requirePointInTimeRecovery(dynamo, spec.sourceTable);
  await waitForStreamToCover(dynamo, spec, deps.log, deps);
  const arn = await requestExport(dynamo, spec.sourceTable, source, token);
  await deps.sql`
    select sync.note_export_request(${spec.sourceTable}, ${source.bucket}, ${source.prefix},
      ${arn})`;
  return arn;
}
