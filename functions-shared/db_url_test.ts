import assert from "node:assert/strict";
import { describeDbTarget, parseDbUrl } from "./db_url.ts";

const PASSWORD = "s3cr3t-pa55";

Deno.test("a direct connection: port 5432, prepared statements allowed, TLS as sslmode asks", () => {
  const target = parseDbUrl(
    `postgresql://postgres:${PASSWORD}@db.abcdefghij.supabase.co:5432/postgres?sslmode=require`,
  );
  assert.equal(target.host, "db.abcdefghij.supabase.co");
  assert.equal(target.port, 5432);
  assert.equal(target.user, "postgres");
  assert.equal(target.database, "postgres");
  assert.equal(target.transactionPooler, false);
  assert.equal(target.tls, "require");
  // The driver gets the URL without our parameters (they would be startup parameters).
  assert.equal(
    target.url,
    `postgresql://postgres:${PASSWORD}@db.abcdefghij.supabase.co:5432/postgres`,
  );
});

Deno.test("Supabase's transaction pooler (port 6543) is recognised, as is ?pgbouncer=true", () => {
  const shared = parseDbUrl(
    `postgres://postgres.abcdefghij:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:6543/postgres`,
  );
  assert.equal(shared.transactionPooler, true);
  assert.equal(shared.user, "postgres.abcdefghij");
  assert.equal(shared.tls, "require", "Supabase's hosts: encrypted without being asked");
  const session = parseDbUrl(
    `postgres://postgres.abcdefghij:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:5432/postgres`,
  );
  assert.equal(session.transactionPooler, false);
  const local = parseDbUrl(
    `postgresql://postgres:${PASSWORD}@127.0.0.1:54329/postgres?pgbouncer=true`,
  );
  assert.equal(local.transactionPooler, true);
  assert.equal(local.port, 54329);
  assert.equal(local.tls, "prefer", "elsewhere libpq's default: encrypted when offered");
  assert.equal(
    parseDbUrl(`postgresql://postgres:${PASSWORD}@db.abcdefghij.supabase.co:5432/postgres`).tls,
    "require",
  );
  assert.equal(
    parseDbUrl(`postgresql://postgres:${PASSWORD}@127.0.0.1:5432/postgres?sslmode=disable`).tls,
    "disable",
  );
});

Deno.test("sslmode maps to what the driver does; verify-ca is checked as verify-full", () => {
  const tls = (mode: string) => parseDbUrl(`postgresql://u:p@h:5432/d?sslmode=${mode}`).tls;
  assert.equal(tls("disable"), "disable");
  assert.equal(tls("prefer"), "prefer");
  assert.equal(tls("require"), "require");
  assert.equal(tls("verify-ca"), "verify-full");
  assert.equal(tls("verify-full"), "verify-full");
  assert.equal(parseDbUrl("postgresql://u:p@h/d").port, 5432);
  // An @ in the password is fine where it cannot be misread (the last @ ends it), and
  // encoded as %40 anywhere.
  assert.equal(parseDbUrl("postgresql://u:p@ss@h:5432/d").host, "h");
  assert.equal(parseDbUrl("postgresql://u:p%40ss%2Fx@h:5432/d").database, "d");
});

Deno.test("a bad URL says what is wrong and never repeats the password", () => {
  const cases: [string, RegExp][] = [
    [`not a url ${PASSWORD}`, /this is not a URL/],
    [`mysql://root:${PASSWORD}@h:3306/d`, /the scheme is mysql:/],
    [`postgresql://:${PASSWORD}@h:5432/d`, /names none/],
    [
      `postgresql://u:${PASSWORD}@h:5432/d?sslmode=always`,
      /sslmode is one of .* \(it is "always"\)/,
    ],
    [`postgresql://u:${PASSWORD}@h:5432/d?options=-c%20statement_timeout%3D0`, /it has options/],
    [`postgresql://u:${PASSWORD}@h:5432/d?pgbouncer=yes`, /pgbouncer is true or false/],
    // A password with an unencoded @ and then a /, ? or #: its tail would be read as the
    // host, the database or a parameter, and repeated by a message or the startup log.
    [`postgresql://u:ab@${PASSWORD}/x@h:5432/d`, /write @ \/ \? # in the password/],
    [`postgresql://u:ab@${PASSWORD}?x@h:5432/d`, /write @ \/ \? # in the password/],
    [`postgresql://u:ab@${PASSWORD}#x@h:5432/d`, /write @ \/ \? # in the password/],
    [`postgresql://u:p@h:5432/d#${PASSWORD}`, /write @ \/ \? # in the password/],
    [
      `postgresql://u:${PASSWORD}@db.abcdefghij.supabase.co:5432/postgres?sslmode=disable`,
      /sslmode is require or verify-full for Supabase's host db\.abcdefghij\.supabase\.co \(it is disable/,
    ],
    [
      `postgres://u.abcdefghij:${PASSWORD}@aws-0-us-east-1.pooler.supabase.com:6543/postgres?sslmode=prefer`,
      /sslmode is require or verify-full .* \(it is prefer/,
    ],
    [
      `postgres://u.abcdefghij@aws-0-us-east-1.pooler.supabase.com:6543/postgres`,
      /with the password for Supabase's host aws-0-us-east-1\.pooler\.supabase\.com/,
    ],
  ];
  for (const [url, expected] of cases) {
    assert.throws(() => parseDbUrl(url), (error: Error) => {
      assert.match(error.message, expected);
      assert.ok(!error.message.includes(PASSWORD), error.message);
      return true;
    });
  }
});

Deno.test("a host is read as a name server reads it: in capitals or with a final dot, the same host", () => {
  const upper = parseDbUrl(`postgresql://postgres:${PASSWORD}@DB.ABCDEFGHIJ.SUPABASE.CO./postgres`);
  assert.equal(upper.host, "db.abcdefghij.supabase.co");
  assert.equal(upper.tls, "require", "Supabase's host, however written: encrypted");
  assert.equal(upper.url, `postgresql://postgres:${PASSWORD}@db.abcdefghij.supabase.co/postgres`);
  // Supabase's host is never taken in the clear, however written.
  for (const host of ["db.abcdefghij.supabase.co.", "DB.ABCDEFGHIJ.SUPABASE.CO"]) {
    assert.throws(
      () => parseDbUrl(`postgresql://postgres:${PASSWORD}@${host}:5432/postgres?sslmode=disable`),
      /sslmode is require or verify-full for Supabase's host db\.abcdefghij\.supabase\.co \(/,
    );
  }
  // A list of hosts would be the driver's (the first, then the next), read by no check.
  for (
    const host of ["db.abcdefghij.supabase.co,localhost", "db.abcdefghij.supabase.co;x", "a$b"]
  ) {
    assert.throws(
      () => parseDbUrl(`postgresql://postgres:${PASSWORD}@${host}:5432/postgres?sslmode=disable`),
      (error: Error) =>
        /whose host is one name .* or an IPv4 address/.test(error.message) &&
        !error.message.includes(PASSWORD),
      host,
    );
  }
  // An IPv6 address would reach postgres.js as the host "[" (it splits at a colon).
  assert.throws(
    () => parseDbUrl(`postgresql://u:${PASSWORD}@[::1]:5432/d`),
    /whose host is a name or an IPv4 address \(the driver cannot connect to an IPv6 address/,
  );
  assert.equal(parseDbUrl(`postgresql://u:${PASSWORD}@127.0.0.1:5432/d`).host, "127.0.0.1");
});

Deno.test("a URL without a database names postgres, to the driver too", () => {
  const target = parseDbUrl(`postgresql://u.abcdefghij:${PASSWORD}@db.abcdefghij.supabase.co:5432`);
  assert.equal(target.database, "postgres");
  assert.equal(
    target.url,
    `postgresql://u.abcdefghij:${PASSWORD}@db.abcdefghij.supabase.co:5432/postgres`,
  );
});

Deno.test("describeDbTarget names the target without its password", () => {
  const text = describeDbTarget(
    parseDbUrl(`postgresql://postgres:${PASSWORD}@127.0.0.1:6543/postgres?sslmode=require`),
  );
  assert.equal(text, "postgres@127.0.0.1:6543/postgres (transaction pooler, tls require)");
});
