/**
 * The rules a hosted project's secrets (`supabase secrets set`) must keep, checked when
 * the local gateway starts, so that a secret the functions need cannot exist here and be
 * refused there. From Supabase's Edge Functions limits
 * (https://supabase.com/docs/guides/functions/limits, "Secrets"): at most 100 secrets a
 * project, names of up to 256 characters that do not start with `SUPABASE_` (the prefix
 * is reserved for what the platform injects), values of at most 48 KiB (24,576
 * characters). And where the local ones come from: `supabase/functions/.env`, which the
 * Supabase CLI loads for its local functions.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import { FUNCTIONS_ENV_FILE } from "../config.ts";
import { parseEnvFile, type StackEnv } from "../stack_env.ts";

/** At most this many secrets a project. */
export const MAX_SECRETS = 100;
/** A secret's name has at most this many characters. */
export const MAX_SECRET_NAME_CHARS = 256;
/** A secret's value has at most this many characters (48 KiB, as the limits page counts). */
export const MAX_SECRET_VALUE_CHARS = 24_576;
/** The prefix of the names the platform injects, which no secret may take. */
export const RESERVED_PREFIX = "SUPABASE_";

/** What is wrong with `secrets` as a hosted project's secrets, one line each (none: []). */
export function secretProblems(secrets: Record<string, string>): string[] {
  const problems: string[] = [];
  const entries = Object.entries(secrets);
  if (entries.length > MAX_SECRETS) {
    problems.push(`${entries.length} secrets: a project holds at most ${MAX_SECRETS}`);
  }
  for (const [name, value] of entries) {
    if (name.startsWith(RESERVED_PREFIX)) {
      problems.push(`${name}: names starting with ${RESERVED_PREFIX} are reserved`);
    }
    if (name.length > MAX_SECRET_NAME_CHARS) {
      problems.push(
        `${name.slice(0, 40)}…: a name has at most ${MAX_SECRET_NAME_CHARS} characters`,
      );
    }
    // The value is never printed, only its length.
    if (value.length > MAX_SECRET_VALUE_CHARS) {
      problems.push(
        `${name}: its value has ${value.length} characters, at most ${MAX_SECRET_VALUE_CHARS}`,
      );
    }
  }
  return problems;
}

/**
 * The secrets of `supabase/functions/.env` (none without one), read as a dotenv file: an
 * `export ` before a name and quotes around a value are dropped, as the CLI drops them.
 */
export function functionsEnvFile(file = FUNCTIONS_ENV_FILE): Record<string, string> {
  if (!existsSync(file)) return {};
  return Object.fromEntries(
    Object.entries(parseEnvFile(readFileSync(file, "utf8"))).map(([name, value]) => [
      name.replace(/^export\s+/, "").trim(),
      /^(["']).*\1$/.test(value.trim()) ? value.trim().slice(1, -1) : value.trim(),
    ]),
  );
}

/** The PEM of the stack's CA (`DB_CA_CERT_FILE`), or an error saying what to run. */
function stackCa(env: StackEnv): string {
  const file = env.DB_CA_CERT_FILE;
  if (!file || !existsSync(file)) {
    throw new Error(
      `.local/stack.env's DB_CA_CERT_FILE (${file ?? "unset"}) names no file: the ` +
        "database's CA is made by `npm run stack:up`; run it",
    );
  }
  return readFileSync(file, "utf8");
}

/** `url` with its `sslmode` set to `mode`. */
function withSslMode(url: string, mode: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("sslmode", mode);
  return parsed.href;
}

/**
 * The project's secrets (`supabase secrets set` on a hosted project), held to the hosted
 * rules when the gateway starts ({@link secretProblems}): those of
 * `supabase/functions/.env` when there is one (a function's settings, say
 * `STREAM_CHECK_RUN_CPU_MS`), and the stack's own, which it cannot change. The functions
 * read DynamoDB with the stack's reader key and the write-back writes with its writer
 * key, each held by the DynamoDB proxy to its policy in Terraform
 * (local-stack/aws/iam_policies.ts), as IAM holds them on AWS; never the stack's own.
 */
export function projectSecrets(
  env: StackEnv,
  file = FUNCTIONS_ENV_FILE,
): Record<string, string> {
  return {
    ...functionsEnvFile(file),
    // As a careful hosted project sets them: the pooler, its certificate verified against
    // the CA that signs it (Supabase's, downloaded from the dashboard; here the stack's).
    SYNC_DB_URL: withSslMode(env.POOLER_URL, "verify-full"),
    SYNC_DB_CA_CERT: stackCa(env),
    SYNC_WEBHOOK_SECRET: env.SYNC_WEBHOOK_SECRET,
    DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT,
    AWS_REGION: env.AWS_REGION,
    AWS_ACCESS_KEY_ID: env.AWS_READER_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: env.AWS_READER_SECRET_ACCESS_KEY,
    WRITE_BACK_AWS_ACCESS_KEY_ID: env.AWS_WRITER_ACCESS_KEY_ID,
    WRITE_BACK_AWS_SECRET_ACCESS_KEY: env.AWS_WRITER_SECRET_ACCESS_KEY,
  };
}
