/**
 * The admin edit of `npm start`'s live phase (issue 18; docs/interfaces.md,
 * "write-back"): one traffic source renamed as an `authenticated` admin would through
 * the Data API (the role and JWT claims PostgREST sets), then awaited all the way: the
 * trigger records it, pg_net calls `write-back`, the item in DynamoDB Local takes the new
 * name on condition, and the stream brings the change back through the one merge. The
 * validation of the table that follows must then match.
 *
 * @module
 */

import type postgres from "postgres";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { sleep } from "../local-stack/processes.ts";
import type { Item } from "./live_changes.ts";

/** The edited table. */
export const ADMIN_EDIT_TABLE = "firespring_traffic_sources";

/** What the edit did, for the report. */
export interface AdminEdit {
  key: string;
  from: string | null;
  to: string;
  /** The write-back's status and detail. */
  status: string;
  detail: string;
}

/** Who an admin is in {@link asAdmin}: their user id and email. */
export interface AdminUser {
  sub: string;
  email: string;
}

/**
 * The settings PostgREST gives a request's transaction: those of the role it logs in as
 * (`authenticator`: `statement_timeout` and `lock_timeout` 8 s on hosted projects), then
 * those of the role it impersonates (`authenticated`: `statement_timeout` 8 s), each
 * with `set_config(..., true)`. PostgREST 11.1 and later apply the impersonated role's
 * settings per request ("Impersonated Role Settings",
 * https://postgrest.org/en/stable/references/auth.html#impersonated-role-settings);
 * Postgres itself applies a role's settings only at login, never on `set role`, so
 * without this an admin's statement here would run under the server's 2 minutes where the
 * Data API cancels it at 8 s. The values are the database's own (sql/platform/00-roles.sql).
 */
const POSTGREST_ROLE_SETTINGS = `
  select set_config(split_part(setting, '=', 1), substr(setting, strpos(setting, '=') + 1), true)
  from pg_db_role_setting d
  join pg_roles r on r.oid = d.setrole
  cross join lateral unnest(d.setconfig) as setting
  where d.setdatabase = 0 and r.rolname in ('authenticator', 'authenticated')
    and split_part(setting, '=', 1) in ('statement_timeout', 'lock_timeout')
  order by r.rolname = 'authenticated'`;

/**
 * Runs `statement` in a transaction as an `authenticated` user whose `app_metadata.role`
 * is admin, as PostgREST runs a request of theirs (the JWT's claims in
 * `request.jwt.claims`, `set local role`, and the roles' timeouts,
 * {@link POSTGREST_ROLE_SETTINGS}).
 */
export async function asAdmin<T>(
  sql: postgres.Sql,
  user: AdminUser,
  statement: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${
      JSON.stringify({ ...user, role: "authenticated", app_metadata: { role: "admin" } })
    }, true)`;
    await tx`set local role authenticated`;
    await tx.unsafe(POSTGREST_ROLE_SETTINGS);
    return await statement(tx);
  }) as T;
}

/**
 * Renames the first loaded traffic source as an admin and waits (up to `timeoutMs`) until
 * its write-back has ended and, when applied, the stream has brought the new name back.
 * Throws when the wait runs out, naming the table, the key and what it waited for.
 */
export async function adminEdit(
  sql: postgres.Sql,
  loaded: Record<string, Item[]>,
  timeoutMs = 120_000,
): Promise<AdminEdit> {
  const spec = byTargetTable(ADMIN_EDIT_TABLE)!;
  const key = loaded[spec.sourceTable][0].source_id.S!;
  const to = `Renamed by an admin (${new Date().toISOString()})`;
  let from: string | null = null;
  const admin = {
    sub: "00000000-0000-0000-0000-0000000005a1",
    email: "npm-start-admin@example.test",
  };
  await asAdmin(sql, admin, async (tx) => {
    const [row] = await tx`select source_name from public.firespring_traffic_sources
                           where source_id = ${key}`;
    from = row?.source_name ?? null;
    await tx`update public.firespring_traffic_sources set source_name = ${to}
             where source_id = ${key}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [w] = await sql`select status, coalesce(detail, '') as detail from sync.write_backs
                          where target_table = ${ADMIN_EDIT_TABLE}
                            and row_key ->> 'source_id' = ${key}
                          order by id desc limit 1`;
    if (w && w.status !== "pending") {
      const [r] = await sql`select source_name, sync_source from public.firespring_traffic_sources
                            where source_id = ${key}`;
      const back = w.status !== "applied" ||
        (r?.source_name === to && r?.sync_source === "stream");
      if (back) return { key, from, to, status: w.status, detail: w.detail };
    }
    await sleep(250);
  }
  throw new Error(
    `${ADMIN_EDIT_TABLE} [source_id=${JSON.stringify(key)}]: the admin edit was not written ` +
      `back and streamed back within ${timeoutMs / 1000} s (see sync.write_backs)`,
  );
}
