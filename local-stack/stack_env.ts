/**
 * `.local/stack.env`: the `KEY=value` lines through which tests, scripts and people reach
 * the local stack (the keys are fixed by `docs/interfaces.md`). Secrets are
 * made once, at the first `stack:up`, and kept, so a running stack and its clients agree.
 * A value changed by hand (say SYNC_WEBHOOK_SECRET) is kept too, and the next `stack:up`
 * restarts the processes that started with the old one (see {@link startupSettings}).
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  DYNAMODB_PORT,
  EXPORT_BUCKET,
  FUNCTIONS_PORT,
  HOST,
  POSTGRES_PORT,
  S3_CREDENTIALS,
  S3_PORT,
  STACK_ENV_FILE,
} from "./config.ts";
import { poolerUrl } from "./supabase/pooler.ts";
import { dataDir } from "./supabase/postgres_cluster.ts";
import { certificateFiles } from "./supabase/tls_certificates.ts";

/** The values of `.local/stack.env`. */
export interface StackEnv {
  DATABASE_URL: string;
  /**
   * The transaction pooler in front of it (PgBouncer; local-stack/supabase/pooler.ts):
   * what the functions get as SYNC_DB_URL.
   */
  POOLER_URL: string;
  /**
   * The CA that signs the database's certificate (local-stack/supabase/tls_certificates.ts):
   * a client verifying the pooler or Postgres (`sslmode=verify-full`) trusts it, as a
   * hosted project's client trusts Supabase's; the functions get it as SYNC_DB_CA_CERT.
   */
  DB_CA_CERT_FILE: string;
  SUPABASE_URL: string;
  FUNCTIONS_URL: string;
  SUPABASE_ANON_KEY: string;
  SUPABASE_SERVICE_ROLE_KEY: string;
  /** A new-style secret key (`sb_secret_...`), injected as SUPABASE_SECRET_KEYS. */
  SUPABASE_SECRET_KEY: string;
  SUPABASE_JWT_SECRET: string;
  DYNAMODB_ENDPOINT: string;
  AWS_REGION: string;
  /** The stack's own key: the tests', the demo's and the operator's, with no policy. */
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  /**
   * The Edge Functions' reader and the write-back's writer (their AWS_* and
   * WRITE_BACK_AWS_* secrets), each held by the DynamoDB proxy to its Terraform policy
   * (local-stack/aws/iam_policies.ts).
   */
  AWS_READER_ACCESS_KEY_ID: string;
  AWS_READER_SECRET_ACCESS_KEY: string;
  AWS_WRITER_ACCESS_KEY_ID: string;
  AWS_WRITER_SECRET_ACCESS_KEY: string;
  /**
   * The operator's exporter, which `npm run backfill -- --from-export` signs its DynamoDB
   * requests with here, held to its Terraform policy (exports.tf) as the two above are.
   */
  AWS_EXPORTER_ACCESS_KEY_ID: string;
  AWS_EXPORTER_SECRET_ACCESS_KEY: string;
  SYNC_WEBHOOK_SECRET: string;
  /**
   * The faults the DynamoDB proxy injects (local-stack/aws/faults.ts): a fresh stack.env
   * gets {@link DEFAULT_DYNAMODB_FAULTS}, DynamoDB as production serves it; `none` turns
   * them off. Kept across `stack:up`s (an empty value, which stack.envs written before the
   * faults were the default hold, becomes the default); a changed value is in force after
   * the next one.
   */
  DYNAMODB_FAULTS: string;
  /**
   * The S3 stand-in's faults over its defaults (local-stack/aws/s3_faults.ts,
   * parseS3Faults), e.g. `quiet_reads=2,quiet_ms=65000`; empty: the defaults. Kept across
   * `stack:up`s; a changed value is in force after the next one.
   */
  S3_FAULTS: string;
  /** The S3 stand-in (local-stack/aws/s3_server.ts), reached path-style. */
  S3_ENDPOINT: string;
  /** The bucket the stack's DynamoDB exports go to (made when the S3 stand-in starts). */
  EXPORT_BUCKET: string;
  /** The S3 stand-in's own key pair (s3rver's; the exporter's is handed on to it unsigned). */
  S3_ACCESS_KEY_ID: string;
  S3_SECRET_ACCESS_KEY: string;
}

/**
 * The faults a fresh `.local/stack.env` starts with: reads as stale, as throttled and as
 * failing as AWS may serve them (README, "The local stack"), so that every end-to-end
 * test and `npm start` meet them. Write throttling (`throttle_wcu`) is not among them:
 * the default run's writes stay far below any capacity (the demo data set is loaded past
 * the proxy, as an import from S3), and the tests that are about it turn it on
 * (local-stack/aws/faults.ts).
 */
export const DEFAULT_DYNAMODB_FAULTS = "stale_ms=2000,throttle_rcu=300,error_rate=0.02";

/** The stack's settings as an environment reader (for functions-shared/dynamo_client.ts). */
export function stackEnvReader(env: StackEnv): (name: string) => string | undefined {
  return (name) => (env as unknown as Record<string, string | undefined>)[name];
}

/** Parses `KEY=value` lines; blank lines and `#` comments are skipped. */
export function parseEnvFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const eq = trimmed.indexOf("=");
    if (eq > 0) values[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return values;
}

/** Reads `.local/stack.env`; throws a clear error when the stack was never started. */
export function readStackEnv(file = STACK_ENV_FILE): StackEnv {
  if (!existsSync(file)) {
    throw new Error(`${file} does not exist: start the local stack with \`npm run stack:up\``);
  }
  return parseEnvFile(readFileSync(file, "utf8")) as unknown as StackEnv;
}

/**
 * Returns the stack's environment, creating `.local/stack.env` on first use. Existing
 * secrets and any setting added by hand are kept; the addresses are always rewritten
 * from config.ts.
 */
export async function ensureStackEnv(file = STACK_ENV_FILE): Promise<StackEnv> {
  const old = existsSync(file) ? parseEnvFile(readFileSync(file, "utf8")) : {};
  const jwtSecret = old.SUPABASE_JWT_SECRET ?? randomBase64(32);
  const env: StackEnv = {
    DATABASE_URL: `postgresql://postgres:postgres@${HOST}:${POSTGRES_PORT}/postgres`,
    POOLER_URL: poolerUrl(),
    DB_CA_CERT_FILE: certificateFiles(await dataDir()).caFile,
    SUPABASE_URL: `http://${HOST}:${FUNCTIONS_PORT}`,
    FUNCTIONS_URL: `http://${HOST}:${FUNCTIONS_PORT}/functions/v1`,
    SUPABASE_JWT_SECRET: jwtSecret,
    SUPABASE_ANON_KEY: old.SUPABASE_ANON_KEY ?? await signJwt({ role: "anon" }, jwtSecret),
    SUPABASE_SERVICE_ROLE_KEY: old.SUPABASE_SERVICE_ROLE_KEY ??
      await signJwt({ role: "service_role" }, jwtSecret),
    SUPABASE_SECRET_KEY: old.SUPABASE_SECRET_KEY ??
      `sb_secret_${randomBase64(24).replace(/[^A-Za-z0-9]/g, "")}`,
    DYNAMODB_ENDPOINT: `http://${HOST}:${DYNAMODB_PORT}`,
    AWS_REGION: "us-east-1",
    // DynamoDB Local keeps one database per access key and region; this key is the stack's.
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_READER_ACCESS_KEY_ID: "localreader",
    AWS_READER_SECRET_ACCESS_KEY: old.AWS_READER_SECRET_ACCESS_KEY ?? randomBase64(30),
    AWS_WRITER_ACCESS_KEY_ID: "localwriter",
    AWS_WRITER_SECRET_ACCESS_KEY: old.AWS_WRITER_SECRET_ACCESS_KEY ?? randomBase64(30),
    AWS_EXPORTER_ACCESS_KEY_ID: "localexporter",
    AWS_EXPORTER_SECRET_ACCESS_KEY: old.AWS_EXPORTER_SECRET_ACCESS_KEY ?? randomBase64(30),
    SYNC_WEBHOOK_SECRET: old.SYNC_WEBHOOK_SECRET ?? `whsec_${randomBase64(32)}`,
    DYNAMODB_FAULTS: old.DYNAMODB_FAULTS?.trim() ? old.DYNAMODB_FAULTS : DEFAULT_DYNAMODB_FAULTS,
    S3_FAULTS: old.S3_FAULTS ?? "",
    S3_ENDPOINT: `http://${HOST}:${S3_PORT}`,
    EXPORT_BUCKET,
    S3_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
  };
  // Settings the operator added by hand (EDGE_* limits, say) are kept as they are.
  const extra = Object.entries(old).filter(([key]) => !(key in env));
  mkdirSync(dirname(file), { recursive: true });
  const lines = [...Object.entries(env), ...extra].map(([key, value]) => `${key}=${value}`);
  writeStackEnvFile(file, `# Written by \`npm run stack:up\`.\n${lines.join("\n")}\n`);
  return env;
}

/**
 * Replaces `.local/stack.env` whole: written beside it, then renamed over it, so that a
 * process reading it at that moment (a test starting while another runs `stack:up`) reads
 * the old file or the new one, never a truncated one. Readable by its owner only: it
 * holds the stack's secrets.
 */
export function writeStackEnvFile(file: string, text: string): void {
  const next = `${file}.${Deno.pid}.tmp`;
  writeFileSync(next, text, { mode: 0o600 });
  renameSync(next, file);
}

/**
 * The settings a process of the stack starts with, as sorted `KEY=value` lines: every
 * value of `.local/stack.env` (each process reads it when it starts) plus the named
 * variables of the environment it inherits (unset ones as `KEY` alone). `stack:up`
 * hashes this with the process's code to decide whether a running process is reused.
 */
export function startupSettings(
  env: StackEnv,
  variables: string[],
  inherited: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string {
  const lines = Object.entries(env).map(([key, value]) => `stack.env ${key}=${value}`);
  for (const name of variables) {
    const value = inherited(name);
    lines.push(value === undefined ? `env ${name}` : `env ${name}=${value}`);
  }
  return lines.sort().join("\n");
}

function randomBase64(bytes: number): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))));
}

function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(
    /\//g,
    "_",
  );
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/**
 * Signs an HS256 JWT the way Supabase signs its API keys (issuer `supabase`, ten years
 * of validity).
 */
export async function signJwt(claims: Record<string, unknown>, secret: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(
    JSON.stringify({ iss: "supabase", iat: now, exp: now + 10 * 365 * 24 * 3600, ...claims }),
  );
  const signature = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(secret),
    new TextEncoder().encode(`${header}.${payload}`),
  );
  return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
}

/**
 * Verifies an HS256 JWT as Supabase's gateway does for `verify_jwt = true` functions;
 * returns its claims, or undefined when the signature, shape or expiry is wrong.
 */
export async function verifyJwt(
  token: string,
  secret: string,
): Promise<Record<string, unknown> | undefined> {
  const [header, payload, signature] = token.split(".");
  if (!header || !payload || !signature) return undefined;
  const fromB64url = (s: string) =>
    Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  let ok = false;
  try {
    ok = await crypto.subtle.verify(
      "HMAC",
      await hmacKey(secret),
      fromB64url(signature),
      new TextEncoder().encode(`${header}.${payload}`),
    );
  } catch {
    return undefined;
  }
  if (!ok) return undefined;
  const claims = JSON.parse(new TextDecoder().decode(fromB64url(payload)));
  if (typeof claims.exp === "number" && claims.exp < Date.now() / 1000) return undefined;
  return claims;
}
