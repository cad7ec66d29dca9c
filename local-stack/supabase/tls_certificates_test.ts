import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { connect as netConnect } from "node:net";
import { connect, type ConnectionOptions, createServer } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDbUrl } from "../../functions-shared/db_url.ts";
import { poolOptions } from "../../functions-shared/sync_db.ts";
import {
  certificateFiles,
  certificateProblem,
  makeCertificates,
  type ServerCertificate,
} from "./tls_certificates.ts";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "tls-certificates-"));
}

Deno.test("the server certificate names the address only, signed by a CA whose key is gone", async () => {
  const dir = tempDir();
  try {
    const files = await makeCertificates(dir, "127.0.0.1");
    assert.equal(certificateProblem(files, "127.0.0.1"), undefined);
    const server = new X509Certificate(readFileSync(files.certFile));
    assert.equal(server.subjectAltName, "IP Address:127.0.0.1");
    assert.equal(server.checkHost("localhost"), undefined, "no name: a client checking one fails");
    assert.equal(server.ca, false);
    assert.equal(new X509Certificate(readFileSync(files.caFile)).ca, true);
    assert.equal(statSync(files.keyFile).mode & 0o777, 0o600, "Postgres refuses a readable key");
    for (const left of ["ca.key", "server.csr", "server.ext", "ca.srl"]) {
      assert.equal(existsSync(join(dir, left)), false, `${left} is deleted`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("certificates are made again when a file is missing, another CA signed, another address, or near their end", async () => {
  const [one, other] = [tempDir(), tempDir()];
  try {
    const files = await makeCertificates(one, "127.0.0.1");
    await makeCertificates(other, "127.0.0.1");
    assert.match(certificateProblem(files, "10.0.0.1")!, /does not name 10\.0\.0\.1/);
    const soon = new Date(Date.now() + 824 * 24 * 3600 * 1000);
    assert.match(certificateProblem(files, "127.0.0.1", soon)!, /expires soon/);
    copyFileSync(certificateFiles(other).caFile, files.caFile);
    assert.match(certificateProblem(files, "127.0.0.1")!, /is not signed by/);
    rmSync(files.keyFile);
    assert.match(certificateProblem(files, "127.0.0.1")!, /server\.key is missing/);
  } finally {
    rmSync(one, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

Deno.test("without openssl the stack stops, naming what to install", async () => {
  const path = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", "/nonexistent");
  try {
    await assert.rejects(
      () => makeCertificates("/nonexistent", "127.0.0.1"),
      /^Error: stack: missing openssl, .*`apt-get install openssl`$/,
    );
  } finally {
    Deno.env.set("PATH", path);
  }
});

Deno.test("certificates that cannot be read, or a key that is not the certificate's, are made again", async () => {
  const [one, other] = [tempDir(), tempDir()];
  try {
    const files = await makeCertificates(one, "127.0.0.1");
    await makeCertificates(other, "127.0.0.1");
    copyFileSync(certificateFiles(other).keyFile, files.keyFile);
    assert.match(certificateProblem(files, "127.0.0.1")!, /server\.key is not .*server\.crt's key/);
    writeFileSync(files.certFile, "");
    assert.match(certificateProblem(files, "127.0.0.1")!, /are unreadable \(/);
  } finally {
    rmSync(one, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

/**
 * Whether a TLS client with the functions' options for `url` (functions-shared/sync_db.ts,
 * `poolOptions`) accepts the server at `files`, given `ca`: the handshake's verdict.
 */
async function accepts(url: string, files: ServerCertificate, ca: string): Promise<boolean> {
  const server = createServer({
    key: readFileSync(files.keyFile),
    cert: readFileSync(files.certFile),
  }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const ssl = poolOptions(parseDbUrl(url), { max: 1, caCert: ca }).ssl as ConnectionOptions;
  try {
    // As postgres.js upgrades its socket: connected first, then TLS over it with the
    // options (connection.js), so that Node has no host of its own to check against.
    const plain = netConnect(port, "127.0.0.1");
    await new Promise((resolve) => plain.once("connect", resolve));
    return await new Promise<boolean>((resolve) => {
      const socket = connect({ socket: plain, ...ssl }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

Deno.test("the functions' verify-full checks an address against the certificate's IP entries and a name against its names, by the CA given", async () => {
  const dirs = [tempDir(), tempDir(), tempDir()];
  try {
    const ip = await makeCertificates(dirs[0], "127.0.0.1");
    const local = await makeCertificates(dirs[1], "localhost");
    const name = await makeCertificates(dirs[2], "db.example.test");
    const ca = (files: ServerCertificate) => readFileSync(files.caFile, "utf8");
    const url = (host: string) => `postgresql://u:p@${host}:6543/postgres?sslmode=verify-full`;
    assert.equal(await accepts(url("127.0.0.1"), ip, ca(ip)), true);
    assert.equal(await accepts(url("127.0.0.1"), ip, ca(name)), false, "another CA");
    // Node's name when none is given is `localhost`: its certificate does not serve an address.
    assert.equal(await accepts(url("127.0.0.1"), local, ca(local)), false);
    // A name, sent as SNI, as hosted projects are reached (the socket goes to 127.0.0.1).
    assert.equal(await accepts(url("db.example.test"), name, ca(name)), true);
    assert.equal(await accepts(url("other.example.test"), name, ca(name)), false);
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});
