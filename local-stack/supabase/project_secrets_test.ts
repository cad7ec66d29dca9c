import assert from "node:assert/strict";
import {
  functionsEnvFile,
  MAX_SECRET_VALUE_CHARS,
  projectSecrets,
  secretProblems,
} from "./project_secrets.ts";

Deno.test("the project's secrets as hosted Supabase takes them pass", () => {
  assert.deepEqual(
    secretProblems({ SYNC_WEBHOOK_SECRET: "whsec_x", SYNC_DB_URL: "postgresql://" }),
    [],
  );
});

Deno.test("a reserved name, a long name, a long value and too many secrets are each named; no value is printed", () => {
  const secrets: Record<string, string> = {
    SUPABASE_SYNC: "a",
    ["N".repeat(257)]: "b",
    BIG: "s3cr3t".repeat(MAX_SECRET_VALUE_CHARS),
  };
  for (let i = 0; i < 98; i++) secrets[`S${i}`] = "v";
  const problems = secretProblems(secrets);
  assert.deepEqual(problems, [
    "101 secrets: a project holds at most 100",
    "SUPABASE_SYNC: names starting with SUPABASE_ are reserved",
    `${"N".repeat(40)}…: a name has at most 256 characters`,
    `BIG: its value has ${6 * MAX_SECRET_VALUE_CHARS} characters, at most 24576`,
  ]);
  assert.ok(!problems.join("\n").includes("s3cr3t"));
});

Deno.test("supabase/functions/.env is read as the CLI reads it: comments skipped, export and quotes dropped", () => {
  const dir = Deno.makeTempDirSync();
  const file = `${dir}/.env`;
  try {
    assert.deepEqual(functionsEnvFile(file), {}, "no file, no secrets");
    Deno.writeTextFileSync(
      file,
      "# a comment\nSTREAM_CHECK_RUN_CPU_MS=50\nexport A=\"x y\"\nB='z'\n\nC=plain=text\n",
    );
    assert.deepEqual(functionsEnvFile(file), {
      STREAM_CHECK_RUN_CPU_MS: "50",
      A: "x y",
      B: "z",
      C: "plain=text",
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a value of 24,576 characters passes; one more is refused", () => {
  assert.deepEqual(secretProblems({ V: "x".repeat(24_576) }), []);
  assert.deepEqual(secretProblems({ V: "x".repeat(24_577) }), [
    "V: its value has 24577 characters, at most 24576",
  ]);
});

Deno.test("the functions get the stack's reader and writer keys, never its own unrestricted one nor the exporter's, and verify the pooler's certificate", () => {
  const caFile = Deno.makeTempFileSync();
  Deno.writeTextFileSync(caFile, "-----BEGIN CERTIFICATE-----\n");
  const env = {
    POOLER_URL: "postgresql://postgres:pw@127.0.0.1:6543/postgres?pgbouncer=true",
    DB_CA_CERT_FILE: caFile,
    SYNC_WEBHOOK_SECRET: "whsec_x",
    DYNAMODB_ENDPOINT: "http://dynamo",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local-secret",
    AWS_READER_ACCESS_KEY_ID: "localreader",
    AWS_READER_SECRET_ACCESS_KEY: "reader-secret",
    AWS_WRITER_ACCESS_KEY_ID: "localwriter",
    AWS_WRITER_SECRET_ACCESS_KEY: "writer-secret",
    AWS_EXPORTER_ACCESS_KEY_ID: "localexporter",
    AWS_EXPORTER_SECRET_ACCESS_KEY: "exporter-secret",
  } as Parameters<typeof projectSecrets>[0];
  const secrets = projectSecrets(env, "/nonexistent/.env");
  Deno.removeSync(caFile);
  assert.equal(
    secrets.SYNC_DB_URL,
    "postgresql://postgres:pw@127.0.0.1:6543/postgres?pgbouncer=true&sslmode=verify-full",
    "the pooler, its certificate verified",
  );
  assert.equal(secrets.SYNC_DB_CA_CERT, "-----BEGIN CERTIFICATE-----\n");
  assert.equal(secrets.AWS_ACCESS_KEY_ID, "localreader");
  assert.equal(secrets.AWS_SECRET_ACCESS_KEY, "reader-secret");
  assert.equal(secrets.WRITE_BACK_AWS_ACCESS_KEY_ID, "localwriter");
  assert.equal(secrets.WRITE_BACK_AWS_SECRET_ACCESS_KEY, "writer-secret");
  assert.ok(
    !Object.values(secrets).includes("local") && !Object.values(secrets).includes("local-secret"),
    "the stack's own key is no function's",
  );
  assert.ok(
    !Object.values(secrets).includes("localexporter") &&
      !Object.values(secrets).includes("exporter-secret"),
    "the operator's exporter is no function's (it may start paid exports)",
  );
});
