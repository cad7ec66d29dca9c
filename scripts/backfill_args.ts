/**
 * `npm run backfill`'s command line, checked before anything starts: the tables (by their
 * source or target names, or `--all`), a Scan backfill's `--segments`, or an export's
 * `--from-export` with its `--bucket`, `--prefix`, `--export-arn` and `--workers`. A flag
 * that would be ignored is refused, naming why (scripts/backfill.ts runs what it asks).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  arnRegionProblem,
  bySourceTable,
  byTargetTable,
  tableNameFromArn,
  TABLES,
  type TableSpec,
} from "../functions-shared/table_registry.ts";

/** An export's ARN: `arn:aws:dynamodb:<region>:<account>:table/<table>/export/<id>`. */
const EXPORT_ARN =
  /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]+\/export\/[^/\s]+$/;

/** What the command line asks for, checked; a usage error throws {@link UsageError}. */
export interface BackfillArgs {
  tables: TableSpec[];
  fromExport: boolean;
  segments: number;
  bucket?: string;
  prefix: string;
  exportArn?: string;
  workers: number;
  /** `--without-stream`: an export of a table with no stream is loaded all the same. */
  withoutStream: boolean;
}

/** A command line that cannot be run as it is: the message says why (exit 2). */
export class UsageError extends Error {}

const USAGE = "usage: npm run backfill -- <table ...|--all> [--segments N]\n" +
  "       npm run backfill -- --from-export <table ...|--all> [--bucket B] [--prefix P] [--workers N] [--without-stream]\n" +
  "       npm run backfill -- --from-export --export-arn ARN [--workers N] [--without-stream]";

/**
 * Parses and checks the command line. Flags that would be ignored are refused rather
 * than dropped: an export ARN without --from-export would have run a full Scan of a table
 * too big to Scan, tables named beside --all or an ARN would have been another set.
 */
export function backfillArgs(args: string[]): BackfillArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        all: { type: "boolean", default: false },
        segments: { type: "string" },
        "from-export": { type: "boolean", default: false },
        bucket: { type: "string" },
        prefix: { type: "string" },
        "export-arn": { type: "string" },
        workers: { type: "string" },
        "without-stream": { type: "boolean" },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const fromExport = values["from-export"]!;
  const exportArn = values["export-arn"];
  const refuse = (why: string) => {
    throw new UsageError(`${why}\n${USAGE}`);
  };
  if (!fromExport) {
    const exportOnly = ["export-arn", "bucket", "prefix", "workers", "without-stream"]
      .filter((flag) => (values as Record<string, unknown>)[flag] !== undefined);
    if (exportOnly.length > 0) {
      refuse(`--${exportOnly.join(", --")} is for a backfill from an export: add --from-export`);
    }
  } else if (values.segments !== undefined) {
    refuse("--segments is for a Scan backfill; an export's files are its units of work");
  }
  if (exportArn && (positionals.length > 0 || values.all)) {
    refuse("--export-arn names its table: name no table and no --all beside it");
  }
  // The export's own description says where its files are: a bucket or prefix beside
  // its ARN would be ignored.
  if (exportArn && (values.bucket !== undefined || values.prefix !== undefined)) {
    refuse(
      "--export-arn names its export, whose files are where it says: no --bucket or --prefix beside it",
    );
  }
  if (values.all && positionals.length > 0) refuse("name tables or --all, not both");
  // An export's ARN names its table, region and account: checked here, before anything
  // is asked of AWS (a wrong region would otherwise be DynamoDB's own error there).
  if (exportArn && !EXPORT_ARN.test(exportArn)) {
    refuse(
      `--export-arn ${exportArn} is not an export's ARN ` +
        "(arn:aws:dynamodb:<region>:<account>:table/<table>/export/<id>)",
    );
  }
  const named = exportArn ? [tableNameFromArn(exportArn) ?? exportArn] : positionals;
  const tables = resolveTables(named, values.all!);
  if (tables.length === 0) refuse("name the tables to backfill");
  const elsewhere = exportArn ? arnRegionProblem(tables[0], exportArn) : null;
  if (elsewhere) refuse(`--export-arn: ${elsewhere}`);
  // Digits only, as --workers below.
  const segmentsText = values.segments ?? "8";
  const segments = Number(segmentsText);
  if (!/^\d+$/.test(segmentsText.trim()) || segments < 1 || segments > 1_000_000) {
    refuse(`--segments must be a whole number from 1 to 1000000, not ${values.segments}`);
  }
  // Digits only: Number() would take 2.5, 0x10, 1e9 and Infinity, and a billion workers
  // fail after the export was asked for (and paid for), naming no table.
  const workersText = values.workers ?? "4";
  const workers = Number(workersText);
  if (!/^\d+$/.test(workersText.trim()) || workers < 1 || workers > MAX_WORKERS) {
    refuse(
      `--workers must be a whole number from 1 to ${MAX_WORKERS} (files of a table loaded at once), not ${values.workers}`,
    );
  }
  return {
    tables,
    fromExport,
    segments,
    bucket: values.bucket,
    prefix: values.prefix ?? "",
    exportArn,
    workers,
    withoutStream: values["without-stream"] === true,
  };
}

/**
 * Workers per table, at most: past 16 in all they only wait for the loader's connections
 * (scripts/backfill_from_exports.ts, `exportPoolSize`).
 */
export const MAX_WORKERS = 64;

function resolveTables(names: string[], all: boolean): TableSpec[] {
  if (all) return [...TABLES];
  const specs = names.map((name) => {
    const spec = bySourceTable(name) ?? byTargetTable(name);
    if (!spec) {
      throw new UsageError(
        `${name} is neither a DynamoDB source nor a target table; known: ${
          TABLES.map((t) => t.targetTable).join(", ")
        }`,
      );
    }
    return spec;
  });
  // A table named twice (by its source and its target name) is one backfill.
  return [...new Set(specs)];
}
