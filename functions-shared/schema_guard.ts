/**
 * Fails closed when the functions and the database's schema are of different versions:
 * a column the table registry maps (table_registry.ts) that its mirror table lacks would
 * be dropped without a word by `jsonb_populate_record` on every write path, and on the
 * validator's expected side too, so no check would ever see the data go. Deployed, this
 * happens when the functions are deployed before the migration that adds the column is
 * pushed, or a migration renames a column the deployed functions still map. Each function
 * checks before its first request and again a minute after each check, and answers
 * every request 503 until the two agree (the Lambda retries meanwhile, for up to an hour;
 * nothing is applied); its log names each missing column. The whole comparison of the
 * registry with the catalog (types, keys, `sync.source_tables`) is
 * scripts/registry_check.ts, run by the tests; this is the part that loses data, cheap
 * enough for every isolate.
 *
 * @module
 */

import type postgres from "postgres";
import { errorResponse } from "./http.ts";
import { TABLES, type TableSpec } from "./table_registry.ts";

/** The registry maps columns the database lacks; names every one. */
export class SchemaMismatch extends Error {
  constructor(readonly problems: string[]) {
    super(
      `the database's schema is not the one these functions map (${problems.join("; ")}): ` +
        "push the migrations of the functions' version (supabase db push --remote), then deploy the functions",
    );
    this.name = "SchemaMismatch";
  }
}

/** Every registry column (and catch-all) a mirror table lacks, and every table missing. */
export function missingRegistryColumns(
  specs: readonly TableSpec[],
  columns: ReadonlyMap<string, ReadonlySet<string>>,
): string[] {
  const problems: string[] = [];
  for (const spec of specs) {
    const have = columns.get(spec.targetTable);
    if (!have) {
      problems.push(`public.${spec.targetTable} does not exist`);
      continue;
    }
    const missing = [...Object.keys(spec.columns), spec.catchAll].filter((c) => !have.has(c));
    if (missing.length > 0) {
      problems.push(`public.${spec.targetTable} has no column ${missing.join(", ")}`);
    }
  }
  return problems;
}

/** The columns of the mirror tables `tables` in the `public` schema, by table. */
export async function readMirrorColumns(
  sql: postgres.Sql | postgres.TransactionSql,
  tables: readonly string[],
): Promise<Map<string, Set<string>>> {
  const rows = await sql<{ table: string; columns: string[] }[]>`
    select c.relname::text as table, array_agg(a.attname::text) as columns
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_class c on c.oid = a.attrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relname = any(${tables as string[]}::text[])
      and a.attnum > 0 and not a.attisdropped
    group by c.relname`;
  return new Map(rows.map((r) => [r.table, new Set(r.columns)]));
}

/** How long a verdict stands before the catalog is read again. */
export const RECHECK_AFTER_MS = 60_000;

/**
 * How long a failure to read the catalog stands. The check runs before a function's own
 * authentication, so while the database is down each request, signed or not, would
 * otherwise try it again: an unauthenticated caller could keep the function opening
 * connections.
 */
export const REREAD_AFTER_FAILURE_MS = 5_000;

/**
 * The check: resolves when every registry column is there, rejects with
 * {@link SchemaMismatch} when not. Either verdict stands for {@link RECHECK_AFTER_MS}
 * (a migration pushed, or functions deployed, meanwhile is seen within a minute); a
 * failure to read the catalog (the database unavailable) stands for
 * {@link REREAD_AFTER_FAILURE_MS}.
 */
export function schemaGuard(
  read: () => Promise<ReadonlyMap<string, ReadonlySet<string>>>,
  specs: readonly TableSpec[] = TABLES,
  now: () => number = () => performance.now(),
): () => Promise<void> {
  let checked: { verdict: Promise<void>; at: number; standsMs: number } | undefined;
  return () => {
    if (checked && now() - checked.at >= checked.standsMs) checked = undefined;
    if (!checked) {
      const entry = { verdict: Promise.resolve(), at: now(), standsMs: RECHECK_AFTER_MS };
      entry.verdict = read().then((columns) => {
        const problems = missingRegistryColumns(specs, columns);
        if (problems.length > 0) throw new SchemaMismatch(problems);
      }).catch((error) => {
        // From the failure, not the read's start: a read that hung 10 s in a pooler's
        // queue before failing would otherwise stand for no time at all.
        if (!(error instanceof SchemaMismatch)) {
          entry.at = now();
          entry.standsMs = REREAD_AFTER_FAILURE_MS;
        }
        throw error;
      });
      checked = entry;
    }
    return checked.verdict;
  };
}

/** The answer to every request while the schema is of another version. */
export const SCHEMA_MISMATCH_ANSWER =
  "the database's schema is not the one these functions map (the function's log names " +
  "each column): push the migrations of the functions' version (supabase db push --remote), then " +
  "deploy the functions; nothing was done";

/**
 * A function's handler behind the check: a request is handled once the schema is known
 * to match. A mismatch answers 503 with `x-sync-refusal: schema-mismatch` and a body that
 * names no table (the check runs before the function's own authentication; the log names
 * every column, once a verdict); a catalog that cannot be read now is logged and leaves
 * the request to the handler, whose own database errors answer it.
 */
export function guardedHandler(
  guard: () => Promise<void>,
  handler: (req: Request) => Response | Promise<Response>,
  log: (line: string) => void = console.error,
): (req: Request) => Promise<Response> {
  let lastLogged = "";
  const logOnce = (line: string) => {
    if (line !== lastLogged) log(line);
    lastLogged = line;
  };
  return async (req) => {
    try {
      await guard();
    } catch (error) {
      if (!(error instanceof SchemaMismatch)) {
        logOnce(`the schema check could not read the catalog: ${(error as Error).message}`);
        return await handler(req);
      }
      logOnce(error.message);
      return errorResponse(503, SCHEMA_MISMATCH_ANSWER, {
        "retry-after": "60",
        "x-sync-refusal": "schema-mismatch",
      });
    }
    lastLogged = "";
    return await handler(req);
  };
}

/** {@link schemaGuard} of the registry's tables, read through `sql`. */
export function registrySchemaGuard(sql: postgres.Sql): () => Promise<void> {
  return schemaGuard(() => readMirrorColumns(sql, TABLES.map((t) => t.targetTable)));
}
