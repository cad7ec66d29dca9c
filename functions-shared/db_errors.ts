/**
 * What a database failure means, for the answer and the retry: the database or its
 * pooler unavailable (PgBouncer, Supavisor), a connection lost after the statement may
 * have committed, settings the database refuses, a statement refused for its data, lost
 * to another, cut over, or the database read-only; and whether the same statement may
 * pass if sent again later.
 *
 * @module
 */

/**
 * Whether Postgres refused a statement for the data it carries: SQLSTATE class 22 (data
 * exception), 23 (integrity constraint violation) or 54 (program limit exceeded).
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/**
 * Whether an error means the database cannot be reached right now (so the request may
 * be retried as it is), rather than that the request itself is wrong: a refused or lost
 * connection, a server shutting down or out of connections, any SQLSTATE of class 08
 * (connection exception). PgBouncer reports its own failures as 08P01, e.g.
 * `query_wait_timeout` (no server connection came free, or the server is down) and
 * `server login has been failing, try again later (server_login_retry)` right after
 * the server came back (https://www.pgbouncer.org/config.html). Supavisor, the hosted
 * pooler, reports its own as XX000 with the reason in parentheses first:
 * `(ECHECKOUTTIMEOUT) unable to check out connection from the pool` when no connection
 * came free, `(EMAXCONN...)` for too many clients, `(ECIRCUITBREAKER)` and
 * `(EDBHANDLEREXITED)` (supabase/supavisor, test/integration/proxy_test.exs), and
 * (lib/supavisor/errors/) `(ECHECKOUTRETRIES)` when the server connections kept dying
 * at checkout (Postgres restarting), `(EPOOLCHECKOUT)`, `(ESUBSCRIBERETRIES)`,
 * `(EMAXPOOLSREACHED)`, `(EPROXYSTARTFAILED)` ("failed to start proxy connection") and
 * `(EPROXYSUPERVISORUNAVAILABLE)` ("proxy supervisor unavailable after retries", both in
 * lib/supavisor/errors/, the proxy to a project's pool not up yet), and `(EAUTHQUERY)`
 * when its password lookup could not reach the
 * database (`auth_query connection failed`, `... timed out`, or its query's connection not
 * available). Its other EAUTHQUERY reasons (a user not found, a secret's format) are a
 * configuration's, not to be retried as they are.
 */
const SUPAVISOR_UNAVAILABLE =
  /^\((ECHECKOUTTIMEOUT|EMAXCONN[A-Z]*|EDBHANDLEREXITED|ECHECKOUTRETRIES|EPOOLCHECKOUT|ESUBSCRIBERETRIES|EMAXPOOLSREACHED|EPROXYSTARTFAILED|EPROXYSUPERVISORUNAVAILABLE)\)|^\(EAUTHQUERY\) (auth_query connection failed|auth_query secret check timed out|authentication query failed: connection to database not available)/;

/**
 * Supavisor before 2.9.0 sent the same failures as bare text, no code in parentheses
 * (supabase/supavisor, lib/supavisor/client_handler/error.ex at 71eb86b7^, the commit
 * that added the codes): "Unable to check out connection from the pool due to timeout"
 * (earlier "process"), "Max client connections reached", "MaxClientsInSessionMode: max
 * clients reached - ...", "Max pools count reached", "Failed to start proxy connection.
 * ...", "Proxy supervisor unavailable", "Failed to subscribe to tenant after multiple
 * retries. Terminating.", "Connection to database closed. ..." and "DbHandler exited.
 * ..." (a server connection lost in use), and "Circuit breaker open: <why>". A hosted
 * project may run either.
 */
const SUPAVISOR_UNAVAILABLE_BEFORE_2_9 =
  /^(unable to check out (connection|process) from the pool|max client connections reached|maxclientsinsessionmode: max clients reached|max pools count reached|failed to start proxy connection|proxy supervisor unavailable|failed to subscribe to tenant after multiple retries|connection to database closed|dbhandler exited|circuit breaker open)/i;

/**
 * Supavisor's circuit breaker, open: for authentication failures (10 in 150 s from one
 * address block it for 120 s: lib/supavisor/circuit_breaker.ex), the login's fault, a
 * password to set right; for anything else, the database's, to retry.
 */
const SUPAVISOR_BREAKER = /^(\(ECIRCUITBREAKER\) |circuit breaker open)/i;
const AUTH_BREAKER = /authentication|auth_error/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string };
  const codes = [
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
    "53300", // too_many_connections
  ];
  if (isTlsRequired(e?.message)) return false;
  return codes.includes(e?.code ?? "") || /^08[0-9A-Z]{3}$/.test(e?.code ?? "") ||
    e?.name === "ConnectionRefused" ||
    /connection refused|connection reset|ECONNREFUSED|terminating connection/i.test(
      e?.message ?? "",
    ) || SUPAVISOR_UNAVAILABLE.test(e?.message ?? "") ||
    SUPAVISOR_UNAVAILABLE_BEFORE_2_9.test(e?.message ?? "") && !isAuthBreaker(e?.message) ||
    SUPAVISOR_BREAKER.test(e?.message ?? "") && !isAuthBreaker(e?.message);
}

/**
 * Whether `message` is PgBouncer's refusal of a client without TLS when its
 * `client_tls_sslmode` is `require` ("SSL required", sent as 08P01, the code it gives a
 * database that is down too): a project's dedicated pooler with SSL enforced refuses so a
 * URL with `sslmode=disable`, which no retry fixes. (Postgres refuses it with 28000, "no
 * pg_hba.conf entry ... SSL off": https://supabase.com/docs/guides/platform/ssl-enforcement.)
 */
function isTlsRequired(message: string | undefined): boolean {
  return /^SSL required$/.test(message ?? "");
}

/** Whether `message` is Supavisor's breaker opened by failed logins. */
function isAuthBreaker(message: string | undefined): boolean {
  return SUPAVISOR_BREAKER.test(message ?? "") && AUTH_BREAKER.test(message ?? "");
}

/**
 * Whether a connection lost with `error` may have been lost after the server took the
 * statement, so that its transaction may have committed and only the answer is gone: a
 * connection reset, closed or ended while in use, a socket timeout, the backend
 * terminated. False for a connection that was never made (refused, a connect timeout,
 * too many connections, the pooler's own refusals), after which nothing was sent.
 */
export function mayHaveCommitted(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  const inFlight = [
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "08006", // connection_failure
    "08003", // connection_does_not_exist
    "08007", // transaction_resolution_unknown
  ];
  // The poolers' own words for a server connection lost while a client held it:
  // Supavisor's (EDBHANDLEREXITED) (supabase/supavisor, lib/supavisor/errors), PgBouncer's
  // "server conn crashed?" (08P01, a code it also gives its query_wait_timeout, which
  // sent nothing: the message tells them apart).
  return isDatabaseUnavailable(error) &&
    (inFlight.includes(e?.code ?? "") ||
      /connection reset|terminating connection|\(EDBHANDLEREXITED\)|^connection to database closed|^dbhandler exited|server conn crashed/i
        .test(
          e?.message ?? "",
        ));
}

/**
 * Whether the database refused the function's connection settings, which no retry of the
 * same request fixes but which are the setting's fault, not the request's: a login
 * refused (SQLSTATE class 28: a password reset in the dashboard and not in SYNC_DB_URL), a
 * database that does not exist (3D000), the pooler not knowing the user or tenant
 * (Supavisor's `(ENOTFOUND)`, `(ETENANTNOTFOUND)` and its other `(EAUTHQUERY)` reasons:
 * supabase/supavisor's lib/supavisor/errors), Supavisor's breaker opened by failed logins
 * (it refuses every login for 120 s, the right password's too), a server certificate
 * that does not verify, or a pooler that requires TLS of a URL that turned it off.
 */
export function isDatabaseMisconfigured(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  const code = e?.code ?? "";
  const message = e?.message ?? "";
  return /^28[0-9A-Z]{3}$/.test(code) || code === "3D000" ||
    /^\((ENOTFOUND|ETENANTNOTFOUND|EAUTHQUERY)\)/.test(message) && !isDatabaseUnavailable(error) ||
    isAuthBreaker(message) || isTlsRequired(message) ||
    /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_HAS_EXPIRED|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/
      .test(code);
}

/**
 * Whether a statement was refused because the sync is cut over (`write_back` `cutover`):
 * SQLSTATE SY005, raised by sync.enter_merge and sync.start_validation.
 */
export function isCutOver(error: unknown): boolean {
  return (error as { code?: string })?.code === "SY005";
}

/**
 * The run to follow when a validation was refused because its table already has one
 * queued or running (SQLSTATE SY006, raised by sync.start_validation with the run's id in
 * its detail, `{"runId": N}`); undefined for any other error.
 */
export function validationUnderWay(error: unknown): { runId?: number } | undefined {
  const e = error as { code?: string; detail?: string } | undefined;
  if (e?.code !== "SY006") return undefined;
  try {
    const runId = Number(JSON.parse(e.detail ?? "").runId);
    return Number.isSafeInteger(runId) ? { runId } : {};
  } catch {
    return {};
  }
}

/**
 * Whether a statement failed only because it lost to another one: 40001 serialization
 * failure, 40P01 deadlock, 55P03 lock timeout. The same statement, sent again, passes.
 */
export function lostToAnother(error: unknown): boolean {
  return ["40001", "40P01", "55P03"].includes((error as { code?: string })?.code ?? "");
}

/**
 * Whether a write was refused because the database is read-only (SQLSTATE 25006,
 * "cannot execute INSERT in a read-only transaction"): Supabase puts a project's database
 * in read-only mode when its disk is nearly full ("your database can go into read-only
 * mode which can prevent you inserting and deleting data",
 * https://supabase.com/docs/guides/platform/database-size), as
 * `default_transaction_read_only` does. Nothing is wrong with the batch: it passes once
 * the operator has grown the disk or freed space, and the mode is lifted.
 */
export function isReadOnly(error: unknown): boolean {
  return (error as { code?: string })?.code === "25006";
}

/** Whether a statement was cancelled by its statement timeout (57014). */
export function isStatementTimeout(error: unknown): boolean {
  return (error as { code?: string })?.code === "57014";
}

/**
 * Whether a failed statement may succeed as it is if sent again later: the database
 * unavailable ({@link isDatabaseUnavailable}) or read-only ({@link isReadOnly}), the
 * statement lost to another ({@link lostToAnother}) or timed out (57014), or the server
 * short of a resource (class 53). The webhook answers these 503 with Retry-After
 * (docs/interfaces.md: a transient failure), not 500.
 */
export function isTransientFailure(error: unknown): boolean {
  const code = (error as { code?: string })?.code ?? "";
  return isDatabaseUnavailable(error) || isReadOnly(error) || lostToAnother(error) ||
    isStatementTimeout(error) || /^53[0-9A-Z]{3}$/.test(code);
}
