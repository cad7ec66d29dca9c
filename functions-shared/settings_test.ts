import assert from "node:assert/strict";
import { integer, PLATFORM_SETTINGS, readSettings, SettingsError, text } from "./settings.ts";
import {
  IMPORT_WORKER_SETTINGS,
  runsEndByIsolateAgeMs,
  runWallBudgetMs,
  VALIDATOR_SETTINGS,
} from "./function_settings.ts";

const platform = {
  SUPABASE_DB_URL: "postgresql://postgres:hunter2@db:5432/postgres",
  SUPABASE_URL: "https://ref.supabase.co",
  SUPABASE_SERVICE_ROLE_KEY: "service-key",
};
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("unset settings take their defaults; set ones are parsed", () => {
  const settings = readSettings(
    envOf({ ...platform, IMPORT_WORKER_MAX_CONCURRENT: " 4 " }),
    IMPORT_WORKER_SETTINGS,
  );
  assert.equal(settings.cpuBudgetMs, 1_100);
  assert.equal(settings.wallBudgetMs, 60_000);
  assert.equal(settings.maxConcurrent, 4);
  assert.equal(settings.supabaseUrl, "https://ref.supabase.co");
});

Deno.test("every bad setting is named at once, with what it holds and what it should", () => {
  const bad = envOf({
    ...platform,
    VALIDATOR_CPU_BUDGET_MS: "12OO",
    VALIDATOR_SETTLE_MS: "-5",
    VALIDATOR_WALL_BUDGET_MS: "1.5",
  });
  assert.throws(() => readSettings(bad, VALIDATOR_SETTINGS), (error: unknown) => {
    assert.ok(error instanceof SettingsError);
    assert.deepEqual(error.problems, [
      'VALIDATOR_CPU_BUDGET_MS is "12OO"; it must be a whole number from 50 to 1900',
      'VALIDATOR_WALL_BUDGET_MS is "1.5"; it must be a whole number from 1000 to 400000',
      'VALIDATOR_SETTLE_MS is "-5"; it must be a whole number from 0 to 60000',
    ]);
    return true;
  });
});

Deno.test("an integer setting takes whole numbers written as such, within its bounds", () => {
  const spec = integer("SOME_BUDGET", "a budget", 5, 1, 1000);
  assert.equal(spec.parse("1"), 1);
  assert.equal(spec.parse(" 1000 "), 1000);
  for (const text of ["1001", "0", "-1", "1e3", "1.0", "0x10", "", "9007199254740993"]) {
    assert.throws(() => spec.parse(text), /^Error: a whole number from 1 to 1000$/, text);
  }
});

Deno.test("a missing required setting is named; a secret's value is never shown", () => {
  const specs = {
    key: text("SOME_KEY", "the key", true),
    budget: integer("SOME_BUDGET", "a budget", 5, 1, 9),
  };
  assert.throws(() => readSettings(envOf({}), specs), /SOME_KEY is not set \(the key\)/);
  const secret = {
    ...specs,
    key: {
      ...specs.key,
      parse: () => {
        throw new Error("a whsec_ secret");
      },
    },
  };
  assert.throws(
    () => readSettings(envOf({ SOME_KEY: "hunter2" }), secret),
    (error: unknown) => {
      assert.ok(error instanceof SettingsError);
      assert.equal(
        error.problems[0],
        "SOME_KEY is (a secret, not shown); it must be a whsec_ secret",
      );
      assert.ok(!error.message.includes("hunter2"));
      return true;
    },
  );
});

Deno.test("SYNC_DB_URL wins over SUPABASE_DB_URL, which is the fallback", () => {
  const fallback = readSettings(envOf(platform), PLATFORM_SETTINGS);
  assert.equal(fallback.db.host, "db");
  assert.equal(fallback.db.transactionPooler, false);
  assert.equal(fallback.dbPoolMax, 3);
  assert.equal(fallback.dbConnectTimeoutS, 10);
  assert.equal(fallback.dbIdleTimeoutS, 20);
  assert.equal(fallback.dbCaCert, "");
  const pooled = readSettings(
    envOf({
      ...platform,
      SYNC_DB_URL:
        "postgresql://postgres.ref:hunter2@aws-0-us-east-1.pooler.supabase.com:6543/postgres?sslmode=require",
      SYNC_DB_POOL_MAX: "2",
    }),
    PLATFORM_SETTINGS,
  );
  assert.equal(pooled.db.host, "aws-0-us-east-1.pooler.supabase.com");
  assert.equal(pooled.db.transactionPooler, true);
  assert.equal(pooled.db.tls, "require");
  assert.equal(pooled.dbPoolMax, 2);
});

Deno.test("a bad connection string is named by the setting it came from, its password never shown", () => {
  const problems = (vars: Record<string, string>) => {
    try {
      readSettings(envOf(vars), PLATFORM_SETTINGS);
      return [];
    } catch (error) {
      assert.ok(error instanceof SettingsError);
      assert.ok(!error.message.includes("hunter2"), error.message);
      return error.problems;
    }
  };
  assert.deepEqual(
    problems({
      ...platform,
      SYNC_DB_URL: "postgresql://postgres:hunter2@db:6543/postgres?sslmode=maybe",
      SYNC_DB_POOL_MAX: "0",
    }),
    [
      "SYNC_DB_URL is (a secret, not shown); it must be a postgresql:// URL whose sslmode is " +
      'one of disable, allow, prefer, require, verify-ca, verify-full (it is "maybe")',
      'SYNC_DB_POOL_MAX is "0"; it must be a whole number from 1 to 20',
    ],
  );
  assert.deepEqual(
    problems({ ...platform, SUPABASE_DB_URL: "https://hunter2@db/postgres" }),
    [
      "SUPABASE_DB_URL is (a secret, not shown); it must be a " +
      "postgresql://user:password@host:port/database URL (the scheme is https:)",
    ],
  );
  assert.deepEqual(
    problems({ SUPABASE_URL: "https://ref.supabase.co" }),
    ["SYNC_DB_URL (or SUPABASE_DB_URL) is not set (the database's connection string)"],
  );
  // A URL's credentials are never quoted.
  assert.deepEqual(
    problems({ ...platform, SUPABASE_URL: "ftp://user:hunter2@ref.supabase.co" }),
    [
      'SUPABASE_URL is "ftp://***@ref.supabase.co"; it must be an http(s) URL, such as ' +
      "https://<project ref>.supabase.co (not ftp:)",
    ],
  );
  // Nor in a form the URL parser reads otherwise (no //, a slash in the password, a
  // password of digits and a # that it reads as the port and a fragment: it finds no
  // password then).
  for (
    const value of [
      "http:u:hunter2@ref.supabase.co",
      "ftp://u:hun/ter2@ref.supabase.co",
      "ftp://admin:4242#hunter2@ref.supabase.co",
    ]
  ) {
    const [line] = problems({ ...platform, SUPABASE_URL: value });
    assert.ok(!line.includes("hunter2") && !line.includes("hun/ter2"), line);
  }
  // A password of digits and a / is read as the port and the path: neither is named.
  for (const value of ["https://u:4242/hunter2@ref.supabase.co", "https://u:4242/x/hunter2@h"]) {
    const [line] = problems({ ...platform, SUPABASE_URL: value });
    assert.ok(!line.includes("hunter2") && line.includes("(it has a path)"), line);
  }
  // The functions send the service key to SUPABASE_URL, at `${url}/functions/v1/<name>`:
  // an origin only. A user name or password (a # in one makes the parser read another
  // host), a query, a fragment or a path is refused, naming what it has.
  for (
    const [value, has] of [
      ["https://admin:hunter2@ref.supabase.co", "has a user name or password"],
      ["http://admin:4242#hunter2@ref.supabase.co", "has a fragment"],
      ["https://ref.supabase.co?x=1", "has a query"],
      ["https://ref.supabase.co#top", "has a fragment"],
      ["https://ref.supabase.co/functions/v1", "has a path (/functions/v1)"],
    ]
  ) {
    const lines = problems({ ...platform, SUPABASE_URL: value });
    assert.equal(lines.length, 1, value);
    assert.ok(lines[0].startsWith("SUPABASE_URL is "), lines[0]);
    assert.ok(lines[0].includes(`(it ${has}`), lines[0]);
  }
  // The shared pooler's session mode holds a server connection per client (pgbouncer=true
  // or not: the port says which mode).
  assert.match(
    problems({
      ...platform,
      SYNC_DB_URL:
        "postgres://postgres.ref:hunter2@aws-0-us-east-1.pooler.supabase.com:5432/postgres?pgbouncer=true",
    })[0],
    /transaction mode, port 6543 \(it names port 5432/,
  );
  // The shared pooler's session mode holds a server connection per client.
  assert.deepEqual(
    problems({
      ...platform,
      SYNC_DB_URL:
        "postgres://postgres.ref:hunter2@aws-0-us-east-1.pooler.supabase.com:5432/postgres",
    }),
    [
      "SYNC_DB_URL is (a secret, not shown); it must be the shared pooler's transaction mode, " +
      "port 6543 (it names port 5432 of aws-0-us-east-1.pooler.supabase.com, its session " +
      "mode, which holds a server connection per client)",
    ],
  );
  // Written in capitals, or with a final dot, it is the same host, and refused the same.
  for (
    const host of ["AWS-0-US-EAST-1.POOLER.SUPABASE.COM", "aws-0-us-east-1.pooler.supabase.com."]
  ) {
    assert.match(
      problems({
        ...platform,
        SYNC_DB_URL: `postgres://postgres.ref:hunter2@${host}:5432/postgres`,
      })[0],
      /transaction mode, port 6543 \(it names port 5432 of aws-0-us-east-1\.pooler\.supabase\.com,/,
    );
  }
  // The service key goes to SUPABASE_URL: never in the clear to Supabase's hosts.
  assert.deepEqual(
    problems({ ...platform, SUPABASE_URL: "http://ref.supabase.co" }),
    [
      'SUPABASE_URL is "http://ref.supabase.co"; it must be an https URL for Supabase\'s host ' +
      "ref.supabase.co (not http:)",
    ],
  );
});

Deno.test("settings wrong together are named: another project's database, a certificate that would be ignored", () => {
  const A = "abcdefghijklmnopqrst";
  const B = "bcdefghijklmnopqrstu";
  const problems = (vars: Record<string, string>) => {
    try {
      readSettings(
        envOf({ ...platform, SUPABASE_URL: `https://${A}.supabase.co`, ...vars }),
        PLATFORM_SETTINGS,
      );
      return [];
    } catch (error) {
      assert.ok(error instanceof SettingsError);
      assert.doesNotMatch(error.message, /hunter2/);
      return error.problems;
    }
  };
  assert.deepEqual(
    problems({
      SUPABASE_DB_URL: `postgresql://postgres:hunter2@db.${A}.supabase.co:5432/postgres`,
    }),
    [],
  );
  assert.deepEqual(
    problems({
      SUPABASE_DB_URL: `postgresql://postgres:hunter2@db.${B}.supabase.co:5432/postgres`,
    }),
    [`SYNC_DB_URL (or SUPABASE_DB_URL) is project ${B}'s database, but SUPABASE_URL is project ${A}: the functions would write into another project`],
  );
  assert.equal(
    problems({
      SYNC_DB_URL:
        `postgresql://postgres.${B}:hunter2@aws-0-us-east-1.pooler.supabase.com:6543/postgres`,
    }).length,
    1,
    "the pooler's user names the project",
  );
  // However the host or the project's URL is written: capitals, a final dot.
  const spellings: Record<string, string>[] = [
    {
      SUPABASE_DB_URL: `postgresql://postgres:hunter2@DB.${B.toUpperCase()}.SUPABASE.CO/postgres`,
    },
    { SUPABASE_DB_URL: `postgresql://postgres:hunter2@db.${B}.supabase.co.:5432/postgres` },
    {
      SUPABASE_URL: `https://${A}.supabase.co.`,
      SUPABASE_DB_URL: `postgresql://postgres:hunter2@db.${B}.supabase.co/postgres`,
    },
    {
      SYNC_DB_URL: `postgresql://postgres.${B.toUpperCase()}:hunter2@aws-0-us-east-1.pooler` +
        ".supabase.com:6543/postgres",
    },
  ];
  for (const vars of spellings) {
    assert.deepEqual(problems(vars), [
      `SYNC_DB_URL (or SUPABASE_DB_URL) is project ${B}'s database, but SUPABASE_URL is ` +
      `project ${A}: the functions would write into another project`,
    ], JSON.stringify(Object.keys(vars)));
  }
  // A certificate that sslmode ignores is a warning: a deployment that set it works as it did.
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (line: string) => warnings.push(line);
  try {
    assert.deepEqual(problems({ SYNC_DB_CA_CERT: "not a certificate" }), []);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, [
    "SYNC_DB_CA_CERT is set, but the database URL's sslmode is prefer: the certificate is used only with sslmode=verify-full, so it is ignored",
  ]);
  assert.deepEqual(
    problems({
      SUPABASE_DB_URL:
        `postgresql://postgres:hunter2@db.${A}.supabase.co:5432/postgres?sslmode=verify-full`,
      SYNC_DB_CA_CERT: "not a certificate",
    }),
    ["SYNC_DB_CA_CERT is (a certificate, not shown); it must be a PEM certificate"],
  );
  assert.match(
    problems({ SUPABASE_URL: "abc.supabase.co" })[0],
    /^SUPABASE_URL is "abc\.supabase\.co"; it must be an http\(s\) URL/,
  );
});

Deno.test("a percent sign in the password that is no escape is named, the password not shown", () => {
  assert.throws(
    () =>
      readSettings(
        envOf({
          ...platform,
          SUPABASE_DB_URL: "postgresql://postgres:hun%zzter2@db:5432/postgres",
        }),
        PLATFORM_SETTINGS,
      ),
    (error: Error) =>
      /SUPABASE_DB_URL is \(a secret, not shown\); it must be a postgresql:\/\/ URL whose password is percent-encoded \(a % must begin %XX: write a % as %25\)/
        .test(error.message) &&
      !error.message.includes("hun"),
  );
});

Deno.test("a run's wall budget ends by the isolate age at which runs hand on", () => {
  assert.equal(runWallBudgetMs(60_000, 150, 1_000), 60_000, "a young isolate: the setting");
  assert.equal(runWallBudgetMs(60_000, 150, 74_000), 110_000 - 74_000);
  assert.equal(runWallBudgetMs(60_000, 150, 200_000), 1_000, "never less than a page's worth");
  // A paid plan's 400 s: an isolate takes requests until 200 s, each with a run's worth.
  assert.equal(runsEndByIsolateAgeMs(400), 360_000);
  assert.equal(runWallBudgetMs(60_000, 400, 199_000), 60_000);
  assert.equal(runWallBudgetMs(60_000, 400, 330_000), 30_000);
});
