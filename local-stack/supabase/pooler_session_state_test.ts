/**
 * What the pooler stand-in cannot show: session state left on a server connection.
 * Supavisor in transaction mode resets nothing when a transaction gives its connection
 * back (lib/supavisor/db_handler.ex checks it in as it is, and refuses DISCARD ALL in
 * transaction mode), and its pool is LIFO: a session SET, a session advisory lock or a
 * temporary table would often seem to last for the client that made it, and leak to the
 * next client of that connection (a leaked session advisory lock would hold a table's
 * merges behind it). The stand-in resets every connection after every transaction
 * (pooler.ts), so no test can see such a leak; this check holds the code that runs
 * through the pooler, the functions' SQL and the SQL functions they call, to transaction
 * scope.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../config.ts";

/** Session-wide state, in the forms SQL gives it. */
const SESSION_STATE: [RegExp, string][] = [
  [
    /\bpg_(try_)?advisory_lock(_shared)?\s*\(/i,
    "a session advisory lock (use pg_advisory_xact_lock)",
  ],
  [
    /\bset_config\s*\([^;]*?,\s*false\s*\)/i,
    "set_config(..., false) (use true: the transaction's)",
  ],
  [
    /\bcreate\s+(temp|temporary)\s+table\b(?![^;]*on\s+commit\s+drop)/i,
    "a temporary table kept past the transaction",
  ],
  [/[`'";]\s*listen\s+\w/i, "LISTEN"],
  [/[`'";]\s*prepare\s+\w+\s*(\(|as\b)/i, "a prepared statement (PREPARE)"],
  [
    /\bexecute\s+(format\s*\(\s*)?'\s*set\s+(session\s+)?(?!local\b)\w/i,
    "a session SET run as dynamic SQL (use SET LOCAL)",
  ],
];

/**
 * A session SET in SQL text that TypeScript sends: a string that begins with SET, but SET
 * LOCAL (a setting, ROLE, TIME ZONE or SESSION AUTHORIZATION).
 */
const SESSION_SET =
  /[`'"]\s*set\s+(session\s+)?(?!local\b)(role\b|time\s+zone\b|session\s+authorization\b|"?[a-z_]+("?\.\w+)?"?\s*(=|to\b))/i;

/**
 * A session SET as a statement of a SQL function's body (after a `;`, BEGIN, THEN, ELSE
 * or LOOP; an UPDATE's SET follows its table), string literals and comments left out. A
 * function's own `set` clause lasts for its call alone.
 */
const BODY_SET =
  /(;|\bbegin|\bthen|\belse|\bloop|\$\w*\$)\s*set\s+(session\s+)?(?!local\b)(role\b|time\s+zone\b|session\s+authorization\b|"?[a-z_]+("?\.\w+)?"?\s*(=|to\b))/i;

/**
 * SQL without its comments (`--`, `/* *\/`) and string literals (`'...'`, `E'...'`), read
 * in one pass as Postgres reads them; a dollar-quoted function body is code, and kept
 * (its delimiters too).
 */
function sqlCode(text: string): string {
  let out = "";
  for (let i = 0; i < text.length;) {
    if (text.startsWith("--", i)) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
    } else if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
      out += " ";
    } else if (text[i] === "'") {
      const escapes = /[eE]/.test(text[i - 1] ?? "") && !/\w/.test(text[i - 2] ?? "");
      let j = i + 1;
      while (j < text.length) {
        if (escapes && text[j] === "\\") j += 2;
        else if (text[j] === "'" && text[j + 1] === "'") j += 2;
        else if (text[j] === "'") break;
        else j++;
      }
      out += "''";
      i = j + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

function sources(): { file: string; text: string; typescript: boolean }[] {
  const inDir = (dir: string, keep: (name: string) => boolean) =>
    readdirSync(join(ROOT, dir), { recursive: true }).map(String).filter(keep).map((name) => ({
      file: `${dir}/${name}`,
      text: readFileSync(join(ROOT, dir, name), "utf8"),
      typescript: name.endsWith(".ts"),
    }));
  const code = (n: string) =>
    n.endsWith(".ts") && !n.endsWith("_test.ts") && !n.endsWith("_fakes.ts");
  return [
    // The functions' SQL (the export loads' too: scripts/backfill.ts sends it through
    // functions-shared).
    ...inDir("functions-shared", code),
    ...inDir("supabase/functions", code),
    // A migration's own statements run on a direct connection (db push); the bodies of
    // the functions it defines run through the pooler.
    ...inDir("supabase/migrations", (n) => n.endsWith(".sql")),
  ];
}

Deno.test("nothing that runs through the pooler keeps state past its transaction", () => {
  const found: string[] = [];
  for (const { file, text, typescript } of sources()) {
    const patterns: [RegExp, string][] = typescript
      ? [...SESSION_STATE, [SESSION_SET, "a session SET (use SET LOCAL)"]]
      : [...SESSION_STATE, [BODY_SET, "a session SET in a function's body (use SET LOCAL)"]];
    for (const [pattern, what] of patterns) {
      // The session-state forms in the raw text (an `execute 'create temp table ...'`
      // counts); a session SET among a body's statements in its code alone.
      const match = pattern.exec(typescript || pattern !== BODY_SET ? text : sqlCode(text));
      if (match) found.push(`${file}: ${what}: ${match[0].trim()}`);
    }
  }
  assert.deepEqual(found, []);
});

Deno.test("the check finds each form of session state", () => {
  const samples = [
    "select pg_advisory_lock(1)",
    "perform set_config('a.b', 'c', false)",
    "create temporary table t (x int)",
    "`listen changes`",
    "`prepare q as select 1`",
  ];
  samples.forEach((sample, i) => assert.match(sample, SESSION_STATE[i][0], sample));
  for (
    const sample of [
      "`set statement_timeout = 0`",
      "`set lock_timeout='5s'`",
      "`set role authenticated`",
      "`set session authorization x`",
      "`set time zone 'UTC'`",
      '`set "sync.write_back_skip" to on`',
    ]
  ) assert.match(sample, SESSION_SET, sample);
  assert.doesNotMatch("`set local synchronous_commit = off`", SESSION_SET);
  for (
    const sample of [
      "begin set search_path = x;",
      "x := 1; set role postgres;",
      "then set x.y to 1",
      "x := 1;set role postgres;",
      "as $$ set search_path = x; $$",
    ]
  ) {
    assert.match(sample, BODY_SET, sample);
  }
  for (
    const fine of [
      "update t\n set x = 1;",
      "begin set local x = 1;",
      "language sql set search_path = ''",
    ]
  ) {
    assert.doesNotMatch(sqlCode(fine), BODY_SET, fine);
  }
  assert.doesNotMatch(sqlCode("select 'no; set it to 24 hours'"), BODY_SET);
  // A quote in a comment does not swallow the code after it, nor a `--` in a string.
  assert.match(sqlCode("-- the table's rows\nbegin set role x;"), BODY_SET);
  assert.match(sqlCode("select '--'; set role x;"), BODY_SET);
  assert.match(sqlCode("/* it's */ begin set role x;"), BODY_SET);
  assert.doesNotMatch(sqlCode("select E'it\\'s; set role x';"), BODY_SET);
  assert.match("execute 'create temp table t (x int)'", SESSION_STATE[2][0], "in a string");
  assert.ok(SESSION_STATE.some(([p]) => p.test("begin execute 'set role x'; end")), "dynamic SET");
  assert.ok(
    !SESSION_STATE.some(([p]) => p.test("execute 'set local role x'")),
    "dynamic SET LOCAL",
  );
  for (
    const fine of [
      "select pg_advisory_xact_lock(1)",
      "`set local synchronous_commit = off`",
      "update t set x = 1",
    ]
  ) {
    assert.ok(SESSION_STATE.every(([p]) => !p.test(fine)), fine);
  }
});
