/**
 * The functions as hosted Supabase gets them: the real Supabase CLI (`supabase functions
 * deploy --use-api`, bundling on Supabase's servers, which is also what the CLI does
 * without Docker) deploys to a stand-in of the Management API
 * (local-stack/supabase/management_api.ts), which builds each upload from its files alone
 * and holds it to the 5 MB that server-side bundling allows. No stack is needed.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../local-stack/config.ts";
import { SERVER_BUNDLE_MAX_BYTES } from "../local-stack/supabase/function_bundle.ts";
import { startManagementApi } from "../local-stack/supabase/management_api.ts";
import { functionDirs } from "../scripts/function_configs.ts";

const SUPABASE_BIN = join(ROOT, "node_modules", ".bin", "supabase");
const PROJECT_REF = "abcdefghijklmnopqrst";

function randomToken(): string {
  const hex = [...crypto.getRandomValues(new Uint8Array(20))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `sbp_${hex}`;
}

/**
 * Runs `supabase functions deploy --use-api` in `cwd` against `apiUrl` (a CLI profile
 * naming it), with `token`; its exit code and everything it printed.
 */
async function deploy(
  cwd: string,
  apiUrl: string,
  token: string,
  slugs: string[] = [],
): Promise<{ code: number; output: string }> {
  const home = mkdtempSync(join(tmpdir(), "deploy-home-"));
  try {
    const profile = join(home, "profile.yaml");
    writeFileSync(
      profile,
      `name: local-management-api\napi_url: ${apiUrl}\ndashboard_url: ${apiUrl}/dashboard\n` +
        "project_host: supabase.co\n",
    );
    const { code, stdout, stderr } = await new Deno.Command(SUPABASE_BIN, {
      args: [
        "functions",
        "deploy",
        ...slugs,
        "--use-api",
        "--yes",
        "--profile",
        profile,
        `--remote=${PROJECT_REF}`,
      ],
      cwd,
      // Only what the CLI needs: none of this machine's Supabase settings, no telemetry,
      // no update check.
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: home,
        SUPABASE_ACCESS_TOKEN: token,
        NO_COLOR: "1",
        DO_NOT_TRACK: "1",
        SUPABASE_TELEMETRY_DISABLED: "1",
        SUPABASE_NO_UPDATE_NOTIFIER: "1",
      },
      stdout: "piped",
      stderr: "piped",
      // A guard against a hang only: this file runs under `nice` (scripts/e2e_plan.ts,
      // UNDER_NICE), and on a loaded machine a deploy that takes 2 s alone took over 3
      // minutes, starved by the suites beside it.
      signal: AbortSignal.timeout(900_000),
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code, output: decode(stdout) + decode(stderr) };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A project of one function, `hello`, whose files are `files` (paths under it). */
function tinyProject(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "deploy-project-"));
  mkdirSync(join(dir, "supabase", "functions", "hello"), { recursive: true });
  writeFileSync(
    join(dir, "supabase", "config.toml"),
    'project_id = "tiny"\n\n[functions.hello]\nverify_jwt = false\n',
  );
  for (const [path, text] of Object.entries(files)) {
    writeFileSync(join(dir, "supabase", "functions", "hello", path), text);
  }
  return dir;
}

Deno.test("the real CLI deploys every function, bundled on the server from its upload alone, each under 5 MB", async () => {
  const token = randomToken();
  const api = startManagementApi({ projectRef: PROJECT_REF, accessToken: token });
  try {
    const { code, output } = await deploy(ROOT, api.url, token);
    assert.equal(code, 0, output);
    assert.ok(!output.includes(token.slice(4)), "the access token is never printed");
    const slugs = functionDirs(ROOT).map((dir) => dir.slice(dir.lastIndexOf("/") + 1));
    assert.deepEqual([...api.functions.keys()].sort(), slugs, "all live, by the bulk update");
    assert.equal(api.pending.size, 0);
    for (const slug of slugs) {
      const fn = api.functions.get(slug)!;
      assert.equal(fn.verifyJwt, false, `${slug}: config.toml's verify_jwt`);
      assert.equal(fn.entrypointPath, `supabase/functions/${slug}/index.ts`);
      assert.equal(fn.importMapPath, `supabase/functions/${slug}/deno.json`);
      assert.ok(fn.bytes < SERVER_BUNDLE_MAX_BYTES, `${slug}: ${fn.bytes} bytes`);
      // Only the function's own folder and the shared modules: no test, fake, stand-in or
      // Lambda code reaches a function (the arrows of the house rules), and no secret.
      for (const file of fn.files) {
        assert.match(
          file,
          new RegExp(
            `^(supabase/functions/${slug}/(index\\.ts|deno\\.json)|functions-shared/[\\w.]+\\.ts)$`,
          ),
          `${slug}: ${file}`,
        );
        assert.doesNotMatch(file, /_test\.ts$|fakes?\.ts$/, `${slug}: ${file}`);
      }
    }
    assert.ok(api.requests.includes(`PUT /v1/projects/${PROJECT_REF}/functions 200`));
  } finally {
    await api.close();
  }
});

/**
 * Deploys `hello` of a project of `files` and asserts that it is refused with `expected`,
 * nothing deployed.
 */
async function assertRefused(files: Record<string, string>, expected: RegExp): Promise<void> {
  const dir = tinyProject(files);
  const token = randomToken();
  const api = startManagementApi({ projectRef: PROJECT_REF, accessToken: token });
  try {
    const { code, output } = await deploy(dir, api.url, token, ["hello"]);
    assert.notEqual(code, 0, output);
    assert.match(output, expected);
    assert.equal(api.functions.size + api.pending.size, 0);
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

Deno.test("a module the CLI does not upload fails the deployment, naming it", async () => {
  // A template literal: Deno resolves it, the CLI's reading of imports does not.
  await assertRefused(
    {
      "index.ts":
        "const { hello } = await import(`./helper.ts`);\nDeno.serve(() => new Response(hello));\n",
      "helper.ts": 'export const hello = "hello";\n',
    },
    /failed to bundle function hello: supabase\/functions\/hello\/helper\.ts: Module not found/,
  );
});

Deno.test("a function over server-side bundling's 5 MB is refused with the hosted error", async () => {
  await assertRefused(
    {
      "index.ts": 'import { blob } from "./blob.ts";\nDeno.serve(() => new Response(blob));\n',
      "blob.ts": `export const blob = "${"x".repeat(5.5 * 1024 * 1024)}";\n`,
    },
    /Function source code exceeds the maximum deployment size: 5\.\d\d MB, where bundling on the server allows 5 MB/,
  );
});

Deno.test("a wrong access token deploys nothing, and neither token is printed", async () => {
  const token = randomToken();
  const wrong = randomToken();
  const api = startManagementApi({ projectRef: PROJECT_REF, accessToken: token });
  try {
    const { code, output } = await deploy(ROOT, api.url, wrong, ["mmp-toledo-sync"]);
    assert.notEqual(code, 0, output);
    assert.match(output, /Unauthorized/);
    assert.ok(!output.includes(wrong.slice(4)) && !output.includes(token.slice(4)));
    assert.equal(api.functions.size, 0);
  } finally {
    await api.close();
  }
});
