import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installedProvider, reattachValue, startProviderServer } from "./provider_server.ts";

// What terraform-provider-aws 5.100.0 prints when started with -debug.
const REATTACH =
  `{"registry.terraform.io/hashicorp/aws":{"Protocol":"grpc","ProtocolVersion":5,"Pid":27250,` +
  `"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin1578686817"}}}`;
const PRINTED = `Starting github.com/hashicorp/terraform-provider-aws@5.100.0 (go1.23.10)...
Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:

\tTF_REATTACH_PROVIDERS='${REATTACH}'
`;

/** A folder for a test, removed after it. */
function withFolder(fn: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "provider-server-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** A stand-in for the provider's binary: a shell script. */
function script(dir: string, body: string): string {
  const path = join(dir, "terraform-provider-aws_v5.100.0_x5");
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

Deno.test("reattachValue reads the value once the AWS provider's address is printed", () => {
  assert.equal(reattachValue(PRINTED), REATTACH);
  assert.equal(reattachValue(PRINTED.slice(0, PRINTED.indexOf("'") + 20)), undefined);
  assert.equal(reattachValue("Starting github.com/hashicorp/terraform-provider-aws"), undefined);
  assert.equal(reattachValue(`TF_REATTACH_PROVIDERS='{"other/provider":{}}'`), undefined);
  assert.equal(reattachValue(`TF_REATTACH_PROVIDERS='{not json}'`), undefined);
});

Deno.test(
  "installedProvider finds the one binary init installed, or none",
  withFolder((dir) => {
    assert.equal(installedProvider(dir), undefined);
    const platform = join(
      dir,
      "providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64",
    );
    mkdirSync(platform, { recursive: true });
    writeFileSync(join(platform, "LICENSE.txt"), "");
    assert.equal(installedProvider(dir), undefined);
    writeFileSync(join(platform, "terraform-provider-aws_v5.100.0_x5"), "");
    assert.equal(installedProvider(dir), join(platform, "terraform-provider-aws_v5.100.0_x5"));
    const other = join(dir, "providers/registry.terraform.io/hashicorp/aws/6.0.0/linux_amd64");
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, "terraform-provider-aws_v6.0.0_x5"), "");
    assert.equal(installedProvider(dir), undefined, "two versions: which one is unknown");
  }),
);

Deno.test(
  "startProviderServer resolves with the value once the provider listens, and stops it",
  withFolder(async (dir) => {
    const binary = script(
      dir,
      // The environment is noted before the line that says it listens, as a provider
      // reads its environment before it listens: the test reads the note once resolved.
      `[ "$1" = "-debug" ] || exit 3\necho "$GOGC" > ${dir}/gogc\n` +
        `printf '%s' "${PRINTED.replaceAll('"', '\\"')}"\nexec sleep 60`,
    );
    const server = await startProviderServer(binary, { env: { GOGC: "400" } });
    assert.deepEqual(server.env, { TF_REATTACH_PROVIDERS: REATTACH });
    assert.equal(Deno.readTextFileSync(join(dir, "gogc")).trim(), "400");
    await server.stop();
    await server.stop();
  }),
);

Deno.test(
  "a provider whose starter never stops it ends by itself at its lifetime",
  withFolder(async (dir) => {
    const binary = script(
      dir,
      `printf '%s' "${PRINTED.replaceAll('"', '\\"')}"\nexec sleep 600`,
    );
    const server = await startProviderServer(binary, { lifetimeSeconds: 1 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      server.ended.then(() => "ended"),
      new Promise((resolve) => (timer = setTimeout(() => resolve("still running"), 60_000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "ended");
  }),
);

Deno.test(
  "startProviderServer rejects, naming the binary and its output, when it ends first",
  withFolder(async (dir) => {
    const binary = script(dir, `echo "Error: unknown flag"\nexit 1`);
    await assert.rejects(
      startProviderServer(binary),
      (error: Error) => {
        assert.match(error.message, new RegExp(`The AWS provider ${binary} ended`));
        assert.match(error.message, /printed: Error: unknown flag/);
        return true;
      },
    );
  }),
);

Deno.test(
  "startProviderServer gives up on a provider that does not listen in time, and ends it",
  withFolder(async (dir) => {
    const binary = script(dir, `echo "Starting"\nexec sleep 60`);
    // It rejects only once the script has ended (it would sleep a minute).
    await assert.rejects(startProviderServer(binary, { timeoutMs: 200 }), /took over 200 ms/);
  }),
);
