/** What a database failure means: retry later, the request's fault, or the settings'. */

import assert from "node:assert/strict";
import {
  isDatabaseMisconfigured,
  isDatabaseUnavailable,
  isDataError,
  isReadOnly,
  isStatementTimeout,
  isTransientFailure,
  mayHaveCommitted,
  validationUnderWay,
} from "./db_errors.ts";

Deno.test("isDataError: classes 22, 23 and 54 only", () => {
  for (const code of ["22P02", "22007", "23505", "54000"]) assert.ok(isDataError({ code }), code);
  for (const code of ["08006", "40001", "57P01", undefined]) {
    assert.ok(!isDataError({ code }), String(code));
  }
});

Deno.test("a pooler's own failures (08P01) and every connection exception mean retry later", () => {
  const pooler = (message: string) => Object.assign(new Error(message), { code: "08P01" });
  assert.equal(isDatabaseUnavailable(pooler("query_wait_timeout")), true);
  assert.equal(
    isDatabaseUnavailable(
      pooler("server login has been failing, try again later (server_login_retry)"),
    ),
    true,
  );
  assert.equal(isDatabaseUnavailable(Object.assign(new Error("x"), { code: "08006" })), true);
  assert.equal(isDatabaseUnavailable(Object.assign(new Error("x"), { code: "57014" })), false);
  assert.equal(isDatabaseUnavailable(Object.assign(new Error("x"), { code: "22007" })), false);
});

Deno.test("a database in read-only mode (25006) is transient, not unavailable: the write passes once it is lifted", () => {
  const readOnly = Object.assign(
    new Error("cannot execute INSERT in a read-only transaction"),
    { code: "25006" },
  );
  assert.equal(isReadOnly(readOnly), true);
  assert.equal(isTransientFailure(readOnly), true);
  assert.equal(isDatabaseUnavailable(readOnly), false);
  assert.equal(isReadOnly(Object.assign(new Error("x"), { code: "25001" })), false);
});

Deno.test("Supavisor's own failures (XX000 with its reason first) mean retry later; other XX000 do not", () => {
  const supavisor = (message: string) => Object.assign(new Error(message), { code: "XX000" });
  for (
    const message of [
      "(ECHECKOUTTIMEOUT) unable to check out connection from the pool due to timeout",
      "(EMAXCONNSESSION) max clients reached in session mode - max clients are limited to pool_size: 15",
      "(EMAXCONN) max client connections reached, limit: 200",
      "(ECIRCUITBREAKER) too many failed attempts to connect to the database, new connections are temporarily blocked",
      "(EDBHANDLEREXITED) connection to database closed. Check logs for more information",
      "(ECHECKOUTRETRIES) failed to check out a connection after multiple retries",
      "(EPOOLCHECKOUT) pool checkout failed: :timeout",
      "(ESUBSCRIBERETRIES) failed to subscribe to tenant after multiple retries. Terminating",
      "(EMAXPOOLSREACHED) max pools count reached",
      "(EPROXYSTARTFAILED) failed to start proxy connection",
      "(EPROXYSUPERVISORUNAVAILABLE) proxy supervisor unavailable after retries",
      "(EAUTHQUERY) auth_query connection failed: econnrefused",
      "(EAUTHQUERY) auth_query secret check timed out",
      "(EAUTHQUERY) authentication query failed: connection to database not available",
    ]
  ) {
    assert.equal(isDatabaseUnavailable(supavisor(message)), true, message);
  }
  assert.equal(isDatabaseUnavailable(supavisor("invalid page in block 7 of relation")), false);
  assert.equal(
    isDatabaseUnavailable(supavisor("(EAUTHQUERY) user not found in the database")),
    false,
    "a configuration's problem, not the database's",
  );
  assert.equal(isDatabaseUnavailable(supavisor("see (ECHECKOUTTIMEOUT) later")), false);
});

Deno.test("Supavisor before 2.9, without codes: the same failures in bare words, retried the same", () => {
  // Its client texts at supabase/supavisor 71eb86b7^ (lib/supavisor/client_handler/error.ex).
  const old = (message: string) => Object.assign(new Error(message), { code: "XX000" });
  for (
    const message of [
      "Unable to check out connection from the pool due to timeout",
      "Unable to check out process from the pool due to timeout",
      "Max client connections reached",
      "MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited to pool_size",
      "Max pools count reached",
      "Failed to start proxy connection. Check logs for more information",
      "Proxy supervisor unavailable",
      "Failed to subscribe to tenant after multiple retries. Terminating.",
      "Connection to database closed. Check logs for more information",
      "DbHandler exited. Check logs for more information.",
      "Circuit breaker open: Unable to establish connection to upstream database",
      "Circuit breaker open: Failed to retrieve database credentials",
    ]
  ) {
    assert.equal(isDatabaseUnavailable(old(message)), true, message);
    assert.equal(isTransientFailure(old(message)), true, message);
    assert.equal(isDatabaseMisconfigured(old(message)), false, message);
  }
  assert.equal(mayHaveCommitted(old("Connection to database closed. Check logs")), true);
  assert.equal(mayHaveCommitted(old("DbHandler exited. Check logs for more information.")), true);
  assert.equal(mayHaveCommitted(old("Max client connections reached")), false);
  assert.equal(isDatabaseUnavailable(old("a row of max client connections reached")), false);
});

Deno.test("Supavisor's breaker opened by failed logins is the password's fault, not the database's", () => {
  for (
    const message of [
      // 2.9 and later (lib/supavisor/circuit_breaker.ex), then before (71eb86b7^).
      "(ECIRCUITBREAKER) too many authentication failures, new connections are temporarily blocked",
      "Circuit breaker open: Too many authentication errors",
    ]
  ) {
    const error = Object.assign(new Error(message), { code: "XX000" });
    assert.equal(isDatabaseMisconfigured(error), true, message);
    assert.equal(isDatabaseUnavailable(error), false, message);
  }
});

Deno.test("a pooler that requires TLS of a URL without it is the URL's fault, not the database's", () => {
  // PgBouncer's words with client_tls_sslmode = require (the stack's pooler answers so).
  const refused = Object.assign(new Error("SSL required"), { code: "08P01" });
  assert.equal(isDatabaseMisconfigured(refused), true);
  assert.equal(isDatabaseUnavailable(refused), false);
  // The same code for a database that is down stays a retry.
  const down = Object.assign(new Error("query_wait_timeout"), { code: "08P01" });
  assert.equal(isDatabaseUnavailable(down), true);
  assert.equal(isDatabaseMisconfigured(down), false);
});

Deno.test("mayHaveCommitted: a connection lost in use may have committed; one never made did not", () => {
  const lost = (message: string, code?: string) => Object.assign(new Error(message), { code });
  for (
    const error of [
      lost("read ECONNRESET", "ECONNRESET"),
      lost("write CONNECTION_CLOSED 127.0.0.1:6543", "CONNECTION_CLOSED"),
      lost("terminating connection due to administrator command", "57P01"),
      lost("(EDBHANDLEREXITED) connection to database closed", "XX000"),
      lost("server conn crashed?", "08P01"),
    ]
  ) {
    assert.equal(mayHaveCommitted(error), true, error.message);
  }
  for (
    const error of [
      lost("connect ECONNREFUSED 127.0.0.1:6543", "ECONNREFUSED"),
      lost("write CONNECT_TIMEOUT 127.0.0.1:6543", "CONNECT_TIMEOUT"),
      lost("query_wait_timeout", "08P01"),
      lost("server login has been failing, try again later (server_login_retry)", "08P01"),
      lost("sorry, too many clients already", "53300"),
      lost("(ECHECKOUTTIMEOUT) checkout timeout", "XX000"),
      lost("duplicate key value violates unique constraint", "23505"),
    ]
  ) {
    assert.equal(mayHaveCommitted(error), false, error.message);
  }
});

Deno.test("a statement timeout is 57014 alone, and may pass when sent again", () => {
  const timeout = Object.assign(new Error("canceling statement due to statement timeout"), {
    code: "57014",
  });
  assert.equal(isStatementTimeout(timeout), true);
  assert.equal(isTransientFailure(timeout), true);
  for (const other of [{ code: "57P01" }, { code: "22P02" }, new Error("x"), null]) {
    assert.equal(isStatementTimeout(other), false);
  }
});

Deno.test("validationUnderWay: SY006 gives the run to follow from its detail; other errors none", () => {
  const refused = (detail?: string) =>
    Object.assign(new Error("already running"), { code: "SY006", detail });
  assert.deepEqual(validationUnderWay(refused('{"runId" : 12}')), { runId: 12 });
  assert.deepEqual(validationUnderWay(refused("not json")), {});
  assert.deepEqual(validationUnderWay(refused()), {});
  assert.equal(validationUnderWay(Object.assign(new Error("x"), { code: "SY005" })), undefined);
  assert.equal(validationUnderWay(undefined), undefined);
});
