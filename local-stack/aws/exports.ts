/**
 * DynamoDB's point-in-time recovery and exports to S3, for the stack's tables, which
 * DynamoDB Local does not have (it answers UnknownOperationException). The proxy serves
 * these operations itself:
 *
 * - `UpdateContinuousBackups` / `DescribeContinuousBackups`: PITR on or off per table
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateContinuousBackups.html).
 * - `ExportTableToPointInTime`: refused with PointInTimeRecoveryUnavailableException
 *   unless PITR is on, TableNotFoundException for an ARN that is not the table's, and
 *   InvalidExportTimeException for an ExportTime before PITR was turned on or in the
 *   future. It answers IN_PROGRESS at once; the export is written in the background and
 *   stays IN_PROGRESS for at least `minExportMs`, as a real one takes minutes, so clients
 *   must poll `DescribeExport`
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html).
 *   A bucket that does not exist ends the export FAILED with S3NoSuchBucket, as AWS
 *   reports a destination it cannot write to; so does one the requester may not write
 *   to (its own `s3:PutObject`, as its S3 policy grants it), with S3AccessDenied.
 * - `DescribeExport` (ExportNotFoundException for an unknown ARN) and `ListExports`.
 *
 * The export is not a snapshot of one instant, as AWS's is not: its items are read when it
 * completes (directly from DynamoDB Local, so it uses no read capacity, as an export does
 * not), and each item written within AWS's window around the export time is as it was at
 * its own random moment of it, from the proxy's recent writes (export_moments.ts says
 * what AWS promises and what of it the stand-in emulates). Writes never wait for an export.
 * The export time answered is the request's instant. The local stack takes only the present
 * as ExportTime: an earlier one is refused with InvalidExportTimeException saying so. Files
 * are written in AWS's layout (local-stack/aws/export_layout.ts). Only full exports in
 * DynamoDB JSON are written; ION or an incremental export is refused with a
 * ValidationException.
 *
 * @module
 */

import { type ErrorDecision, internalServerError } from "./errors.ts";
import { awsError, awsJsonAnswer } from "./json_answer.ts";
import { type ExportState, type ExportWriting, writeExport } from "./export_completion.ts";
import { scopeOf, signerOf } from "./scope.ts";
import { askedOf, exportRequestProblem, exportTimeProblem, sameToken } from "./export_requests.ts";

type Body = Record<string, unknown>;

/** What the exports need: what completing one needs (export_completion.ts), and more. */
export interface ExportOptions extends ExportWriting {
  now?: () => number;
  /** How long an export stays IN_PROGRESS at least: its items are read at its end (2 s). */
  minExportMs?: number;
  /**
   * Runs `run` after `ms` (setTimeout by default): an export completes `minExportMs` after
   * its request, or when DescribeExport or ListExports first finds it due on the clock
   * `now`, if sooner (tests with a clock of their own pass a timer that never fires).
   */
  timer?: (ms: number, run: () => void) => void;
  /**
   * Whether an operation served here fails with InternalServerError, before or after it
   * takes effect (the proxy's `error_rate`, errors.ts): a retried export request must rely
   * on its ClientToken, as on AWS. None when absent.
   */
  decideError?: (target: string) => ErrorDecision;
}

const OPERATIONS = new Set([
  "UpdateContinuousBackups",
  "DescribeContinuousBackups",
  "ExportTableToPointInTime",
  "DescribeExport",
  "ListExports",
]);

/** PITR and exports for the stack's tables; `handle` wraps the proxy's handler. */
export class TableExports {
  #pitrSince = new Map<string, number>();
  #exports = new Map<string, ExportState>();
  readonly #now: () => number;

  constructor(private readonly options: ExportOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** Serves the PITR and export operations; the rest (writes too, never held) go to `next`. */
  async handle(request: Request, next: (request: Request) => Promise<Response>) {
    const operation = (request.headers.get("x-amz-target") ?? "").replace(
      /^DynamoDB_20120810\./,
      "",
    );
    if (!OPERATIONS.has(operation)) return await next(request);
    const body = await request.json().catch(() => ({})) as Body;
    const decision = this.options.decideError?.(`DynamoDB_20120810.${operation}`) ?? "none";
    const failed = () => {
      this.options.log?.(`${operation}: injected InternalServerError (${decision})`);
      return awsJsonAnswer(500, JSON.parse(internalServerError(operation, undefined)));
    };
    if (decision === "fail before forwarding") return failed();
    const answer = await this.#serve(operation, body, request.headers);
    return decision === "fail after forwarding" ? failed() : answer;
  }

  async #describeTable(headers: Headers, name: unknown): Promise<Body | undefined> {
    if (typeof name !== "string") return undefined;
    const described = await this.options.upstream(headers, "DescribeTable", { TableName: name })
      .catch(() => undefined);
    return described?.Table as Body | undefined;
  }

  #continuousBackups(key: string): Body {
    const since = this.#pitrSince.get(key);
    return {
      ContinuousBackupsDescription: {
        ContinuousBackupsStatus: "ENABLED",
        PointInTimeRecoveryDescription: since === undefined
          ? { PointInTimeRecoveryStatus: "DISABLED" }
          : {
            PointInTimeRecoveryStatus: "ENABLED",
            EarliestRestorableDateTime: since / 1000,
            LatestRestorableDateTime: this.#now() / 1000,
          },
      },
    };
  }

  /** An export's description as DescribeExport answers it now: completed first, if due. */
  async #describe(state: ExportState): Promise<Body> {
    if (this.#now() < state.readyAt) return state.description;
    await this.#complete(state);
    return { ...state.description, ...state.outcome };
  }

  async #serve(operation: string, body: Body, headers: Headers): Promise<Response> {
    const scope = scopeOf(headers);
    if (operation === "UpdateContinuousBackups" || operation === "DescribeContinuousBackups") {
      const table = await this.#describeTable(headers, body.TableName);
      if (!table) return awsError("TableNotFoundException", `Table not found: ${body.TableName}`);
      const key = `${scope}/${table.TableName}`;
      if (operation === "UpdateContinuousBackups") {
        const on = (body.PointInTimeRecoverySpecification as Body | undefined)
          ?.PointInTimeRecoveryEnabled;
        if (typeof on !== "boolean") {
          return awsError(
            "ValidationException",
            "PointInTimeRecoveryEnabled must be true or false",
          );
        }
        if (!on) this.#pitrSince.delete(key);
        else if (!this.#pitrSince.has(key)) this.#pitrSince.set(key, this.#now());
      }
      return awsJsonAnswer(200, this.#continuousBackups(key));
    }
    if (operation === "DescribeExport") {
      const state = this.#exports.get(`${scope}/${body.ExportArn}`);
      if (!state) return awsError("ExportNotFoundException", `Export not found: ${body.ExportArn}`);
      return awsJsonAnswer(200, { ExportDescription: await this.#describe(state) });
    }
    if (operation === "ListExports") {
      const listed = [...this.#exports.entries()].filter(([id, s]) =>
        id.startsWith(`${scope}/`) &&
        (body.TableArn === undefined || s.description.TableArn === body.TableArn)
      );
      const summaries = await Promise.all(listed.map(async ([, s]) => ({
        ExportArn: s.description.ExportArn,
        ExportStatus: (await this.#describe(s)).ExportStatus,
        ExportType: "FULL_EXPORT",
      })));
      return awsJsonAnswer(200, { ExportSummaries: summaries });
    }
    return await this.#startExport(body, headers, scope);
  }

  async #startExport(body: Body, headers: Headers, scope: string): Promise<Response> {
    const arn = String(body.TableArn ?? "");
    const table = await this.#describeTable(headers, arn.split(":table/")[1]);
    if (!table || table.TableArn !== arn) {
      return awsError("TableNotFoundException", `Table not found: ${arn}`);
    }
    const problem = exportRequestProblem(body);
    if (problem) return awsError("ValidationException", problem);
    // A ClientToken makes the request idempotent for 8 hours after the first request with
    // it completed (export_requests.ts).
    const scoped = [...this.#exports.entries()]
      .filter(([id]) => id.startsWith(`${scope}/`)).map(([, state]) => state);
    const token = sameToken(scoped, body, this.#now());
    if (token && "conflict" in token) return awsError("ImportConflictException", token.conflict);
    if (token) return awsJsonAnswer(200, { ExportDescription: await this.#describe(token.same) });
    const since = this.#pitrSince.get(`${scope}/${table.TableName}`);
    if (since === undefined) {
      return awsError(
        "PointInTimeRecoveryUnavailableException",
        `Point in time recovery is not enabled for table '${table.TableName}'`,
      );
    }
    const now = this.#now();
    const timeProblem = exportTimeProblem(body, since, now);
    if (timeProblem) return awsError("InvalidExportTimeException", timeProblem);
    // The export time is the request's instant; its items are read when it completes.
    const id = `${String(now).padStart(14, "0")}-${crypto.randomUUID().slice(0, 8)}`;
    const description: Body = {
      ExportArn: `${arn}/export/${id}`,
      ExportStatus: "IN_PROGRESS",
      ExportTime: now / 1000,
      StartTime: now / 1000,
      TableArn: arn,
      TableId: table.TableId,
      S3Bucket: body.S3Bucket,
      S3Prefix: body.S3Prefix ?? null,
      S3SseAlgorithm: body.S3SseAlgorithm ?? "AES256",
      ExportFormat: "DYNAMODB_JSON",
      ExportType: "FULL_EXPORT",
      ClientToken: body.ClientToken ?? crypto.randomUUID(),
    };
    const minExportMs = this.options.minExportMs ?? 2000;
    const keySchema = (table.KeySchema ?? []) as { AttributeName: string }[];
    const state: ExportState = {
      description,
      asked: askedOf(body),
      readyAt: now + minExportMs,
      source: {
        headers: new Headers(headers),
        scope,
        tableName: String(table.TableName),
        keyNames: keySchema.map((k) => k.AttributeName),
        keyId: signerOf(headers) ?? "",
      },
      exportTime: now,
    };
    this.#exports.set(`${scope}/${description.ExportArn}`, state);
    const timer = this.options.timer ?? ((ms, run) => setTimeout(run, ms));
    timer(minExportMs, () => void this.#complete(state));
    return awsJsonAnswer(200, { ExportDescription: description });
  }

  /** Completes an export, once: reads its items and writes its files, or fails it. */
  #complete(state: ExportState): Promise<void> {
    state.completing ??= writeExport(state, this.options, this.#now).catch((error) => {
      state.outcome = {
        ExportStatus: "FAILED",
        EndTime: this.#now() / 1000,
        FailureCode: "InternalServerError",
        FailureMessage: String(error),
      };
    });
    return state.completing;
  }
}
