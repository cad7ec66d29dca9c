/**
 * The TLS certificates of the stack's database: a certificate authority of the stack's
 * own and the server certificate it signs, which the local Postgres and the pooler
 * present. Hosted, every way into the database speaks TLS, with certificates signed by
 * Supabase's own CA ("Download your server root certificate from Database settings";
 * https://supabase.com/docs/guides/database/connecting-to-postgres, "Connecting with
 * SSL"), and a project may reject every connection without it (the same page's toggle).
 * The stack does the same so that the functions' TLS path (functions-shared/sync_db.ts:
 * `sslmode=verify-full` against `SYNC_DB_CA_CERT`) runs in every end-to-end test, as it
 * runs hosted, and costs the isolates its CPU, as it does there.
 *
 * The server certificate names the stack's address only (an IP entry for HOST, no
 * `localhost`), so that a client that checks the wrong name fails here. The CA's key
 * signs once and is deleted: a new certificate means a new CA. Made with the `openssl`
 * command (Debian's, as Postgres's own docs make theirs:
 * https://www.postgresql.org/docs/15/ssl-tcp.html, "Creating Certificates"). The files
 * live in the cluster's data directory (postgres_cluster.ts), where the `postgres` user,
 * which runs Postgres and the pooler, reads them.
 *
 * @module
 */

import { isIPv4 } from "node:net";
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { HOST } from "../config.ts";
import { run } from "../processes.ts";
import { chownToPostgres } from "./postgres_cluster.ts";

/** Where the certificates are. */
export interface ServerCertificate {
  /** The CA's certificate (PEM): what a client verifies the server against. */
  caFile: string;
  /** The server's certificate (PEM), signed by the CA, for {@link HOST}. */
  certFile: string;
  /** The server's private key (PEM), readable by its owner only. */
  keyFile: string;
}

/** Days a certificate is valid; one due within {@link RENEW_BEFORE_S} is made again. */
const VALID_DAYS = 825;
const RENEW_BEFORE_S = 7 * 24 * 3600;

/** The files of a folder's certificates. */
export function certificateFiles(dir: string): ServerCertificate {
  return {
    caFile: join(dir, "ca.crt"),
    certFile: join(dir, "server.crt"),
    keyFile: join(dir, "server.key"),
  };
}

/**
 * Why the certificates in `files` cannot serve `host` for another week, or undefined when
 * they can: a file missing or unreadable (a run of openssl cut short), a key that is not
 * the certificate's, a certificate not signed by the CA, not naming the host, or expiring.
 */
export function certificateProblem(
  files: ServerCertificate,
  host: string,
  now = new Date(),
): string | undefined {
  const missing = Object.values(files).find((file) => !existsSync(file));
  if (missing) return `${missing} is missing`;
  let ca: X509Certificate, server: X509Certificate, key: KeyObject;
  try {
    ca = new X509Certificate(readFileSync(files.caFile));
    server = new X509Certificate(readFileSync(files.certFile));
    key = createPrivateKey(readFileSync(files.keyFile));
  } catch (error) {
    return `the certificates in ${dirname(files.certFile)} are unreadable (${
      (error as Error).message
    })`;
  }
  if (!server.checkPrivateKey(key)) return `${files.keyFile} is not ${files.certFile}'s key`;
  if (!server.verify(ca.publicKey)) return `${files.certFile} is not signed by ${files.caFile}`;
  const named = isIPv4(host) ? server.checkIP(host) : server.checkHost(host);
  if (named === undefined) return `${files.certFile} does not name ${host}`;
  const until = Math.min(Date.parse(server.validTo), Date.parse(ca.validTo));
  if (until - now.getTime() < RENEW_BEFORE_S * 1000) return `${files.certFile} expires soon`;
  return undefined;
}

/**
 * Makes a CA and a server certificate for `host` (an IPv4 address or a name) in `dir` (a
 * folder that exists), with ECDSA P-256 keys; the CA's key is deleted once it has signed.
 */
export async function makeCertificates(dir: string, host: string): Promise<ServerCertificate> {
  const files = certificateFiles(dir);
  const caKey = join(dir, "ca.key");
  const request = join(dir, "server.csr");
  const extensions = join(dir, "server.ext");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  try {
    await run("openssl", ["version"]);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      "stack: missing openssl, which makes the database's TLS certificates: run " +
        "`npm run bootstrap` as root, or `apt-get install openssl`",
    );
  }
  const openssl = (...args: string[]) => run("openssl", args);
  const days = ["-days", String(VALID_DAYS)];
  try {
    // The CA, its extensions named rather than left to the system's openssl.cnf.
    await openssl(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      caKey,
      "-out",
      files.caFile,
      ...days,
      "-subj",
      "/CN=dynamo-supabase-sync local stack CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
    writeFileSync(
      extensions,
      [
        `subjectAltName = ${isIPv4(host) ? "IP" : "DNS"}:${host}`,
        "basicConstraints = CA:FALSE",
        "keyUsage = digitalSignature",
        "extendedKeyUsage = serverAuth",
        "",
      ].join("\n"),
    );
    await openssl("req", ...ec, "-keyout", files.keyFile, "-out", request, "-subj", `/CN=${host}`);
    await openssl(
      "x509",
      "-req",
      "-in",
      request,
      "-CA",
      files.caFile,
      "-CAkey",
      caKey,
      "-CAcreateserial",
      "-out",
      files.certFile,
      ...days,
      "-extfile",
      extensions,
    );
  } finally {
    for (const file of [caKey, request, extensions, join(dir, "ca.srl")]) {
      rmSync(file, { force: true });
    }
  }
  // Postgres refuses a key that its group or others may read.
  chmodSync(files.keyFile, 0o600);
  return files;
}

/**
 * The certificates of the cluster whose data directory is `dir` (made by initdb), made
 * there when there are none or they no longer serve (see {@link certificateProblem}), and
 * whether they were made now (what runs with the old ones must take the new: postgres.ts,
 * pooler.ts, deno_parts.ts): they go with the cluster, and destroying it takes them.
 * Given to the `postgres` user when the stack runs as root.
 */
export async function ensureServerCertificate(
  dir: string,
): Promise<ServerCertificate & { made: boolean }> {
  const files = certificateFiles(dir);
  const problem = certificateProblem(files, HOST);
  if (problem !== undefined) {
    if (existsSync(files.certFile)) console.log(`stack: new TLS certificates: ${problem}`);
    for (const file of Object.values(files)) rmSync(file, { force: true });
    await makeCertificates(dir, HOST);
  }
  await chownToPostgres(files.caFile);
  await chownToPostgres(files.certFile);
  await chownToPostgres(files.keyFile);
  return { ...files, made: problem !== undefined };
}
