import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certificateFiles, certificateProblem, makeCertificates } from "./tls_certificates.ts";

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
