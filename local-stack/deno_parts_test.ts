import assert from "node:assert/strict";
import { join } from "node:path";
import { DENO_BIN, ROOT } from "./config.ts";
import { DENO_PARTS, type DenoPart, PROXY_PART, startFingerprint } from "./deno_parts.ts";
import type { StackEnv } from "./stack_env.ts";

/** The repository's own files that `entry` imports, statically, as `deno info` finds them. */
async function localModules(entry: string): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command(DENO_BIN, {
    args: ["info", "--json", "--config", join(ROOT, "deno.json"), join(ROOT, entry)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `deno info ${entry}: ${new TextDecoder().decode(stderr)}`);
  const root = new URL(`file://${ROOT}/`).href;
  return (JSON.parse(text).modules as { specifier: string }[])
    .map((module) => module.specifier)
    .filter((specifier) => specifier.startsWith(root))
    .map((specifier) => specifier.slice(root.length));
}

/** Whether `file` is one of `code`'s files, or under one of its folders. */
function covered(file: string, code: string[]): boolean {
  return code.some((path) => file === path || file.startsWith(`${path}/`));
}

// A part is reused while its code is unchanged: a module it runs that its `code` leaves
// out would be edited without the part restarting, and the tests would run the old code.
// The graph of its script, and of every file its `code` names (what it starts as a
// worker, such as the stream poller's Lambda handler, which no static import reaches).
for (const part of [PROXY_PART, ...DENO_PARTS] as DenoPart[]) {
  Deno.test(`the ${part.name} part's code covers every module it runs`, async () => {
    const entries = [part.script, ...part.code.filter((path) => path.endsWith(".ts"))];
    const missing = new Set<string>();
    for (const entry of entries) {
      for (const file of await localModules(entry)) {
        if (!covered(file, part.code)) missing.add(file);
      }
    }
    assert.deepEqual([...missing], [], `${part.name} runs modules its code list leaves out`);
  });
}

Deno.test("the functions gateway starts again when the CA it hands the functions is made again", () => {
  const gateway = DENO_PARTS.find((part) => part.name === "functions")!;
  const ca = Deno.makeTempFileSync();
  try {
    const env = { DB_CA_CERT_FILE: ca } as StackEnv;
    Deno.writeTextFileSync(ca, "-----BEGIN CERTIFICATE-----\none\n");
    const before = startFingerprint(gateway, env);
    assert.equal(startFingerprint(gateway, env), before, "the same file: reused");
    Deno.writeTextFileSync(ca, "-----BEGIN CERTIFICATE-----\ntwo\n");
    assert.notEqual(startFingerprint(gateway, env), before);
  } finally {
    Deno.removeSync(ca);
  }
});
