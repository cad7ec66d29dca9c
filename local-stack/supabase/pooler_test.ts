import assert from "node:assert/strict";
import { pgbouncerIni, pgbouncerVersion, poolerUrl } from "./pooler.ts";
import { certificateFiles } from "./tls_certificates.ts";

const TLS = certificateFiles("/tls");

Deno.test("PgBouncer's version is read from what --version prints", () => {
  assert.deepEqual(pgbouncerVersion("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n"), [1, 18]);
  assert.deepEqual(pgbouncerVersion("PgBouncer 1.24.1"), [1, 24]);
  assert.equal(pgbouncerVersion("command not found"), undefined);
});

Deno.test("a PgBouncer that would carry prepared statements across connections is told not to, as Supavisor does not", () => {
  const setting = /^max_prepared_statements = 0$/m;
  assert.match(pgbouncerIni("/d", TLS, 1, 2, [1, 24]), setting);
  assert.match(pgbouncerIni("/d", TLS, 1, 2, [1, 21]), setting);
  assert.match(pgbouncerIni("/d", TLS, 1, 2, [2, 0]), setting);
  // Versions before 1.21 refuse a setting they do not know: none is written.
  assert.doesNotMatch(pgbouncerIni("/d", TLS, 1, 2, [1, 18]), /max_prepared_statements/);
  assert.doesNotMatch(pgbouncerIni("/d", TLS, 1, 2, undefined), /max_prepared_statements/);
});

Deno.test("the pooler requires TLS with the stack's certificate", () => {
  const ini = pgbouncerIni("/d", TLS, 1, 2, [1, 18]);
  assert.match(ini, /^client_tls_sslmode = require$/m);
  assert.match(ini, /^client_tls_cert_file = \/tls\/server\.crt$/m);
  assert.match(ini, /^client_tls_key_file = \/tls\/server\.key$/m);
  // TLS by the clients' default (prefer); no `&` in stack.env, which a shell may source.
  assert.equal(
    poolerUrl(6543),
    "postgresql://postgres:postgres@127.0.0.1:6543/postgres?pgbouncer=true",
  );
});

Deno.test("a certificate made again changes the pooler's configuration, which restarts it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const tls = certificateFiles(dir);
    Deno.writeTextFileSync(tls.certFile, "one");
    const before = pgbouncerIni("/d", tls, 1, 2, [1, 18]);
    assert.equal(pgbouncerIni("/d", tls, 1, 2, [1, 18]), before);
    Deno.writeTextFileSync(tls.certFile, "two");
    assert.notEqual(pgbouncerIni("/d", tls, 1, 2, [1, 18]), before);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
