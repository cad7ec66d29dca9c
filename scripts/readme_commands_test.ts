/**
 * The deploying commands of README.md, as an operator pastes them, against what the
 * tools pinned in package.json do: Supabase CLI 3's database commands act on the local
 * stack unless given `--remote` (`supabase db push --help`: "Local by default. Pass
 * --remote for the linked project"); `aws sqs`, `s3` and `dynamodb` sign for the
 * default region unless given `--region`, and a queue, bucket or table of the other
 * region is then not found; an access key made
 * for a function goes straight into its secrets, never onto the screen; and the commands
 * an operator runs to deploy install nothing of the local stack.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The README's shell blocks' (`sh`, `bash`) commands: lines after a `\` or a `|` joined to theirs. */
function shellCommands(): string[] {
  const blocks = [...README.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((block) =>
    block.replace(/\\\n\s*/g, " ").replace(/\|\n\s*/g, "| ").split("\n")
  );
}

Deno.test("the README's Supabase database commands name the hosted project", () => {
  const local = shellCommands().filter((line) =>
    /\bsupabase (db (push|dump|lint|advisors|diff|pull)|migration (list|repair|up)|gen types)\b/
      .test(line) && !/--remote\b|--db-url\b/.test(line)
  );
  assert.deepEqual(local, [], "these act on the local stack with Supabase CLI 3");
  assert.ok(shellCommands().some((line) => /npx supabase db push --remote\b/.test(line)));
});

Deno.test("the README's aws sqs, s3 and dynamodb commands name their resource's region", () => {
  for (const service of ["sqs", "s3", "dynamodb"]) {
    const lines = shellCommands().filter((line) => new RegExp(`\\baws ${service}\\b`).test(line));
    assert.ok(lines.length >= 2, service);
    assert.deepEqual(lines.filter((line) => !/--region\b/.test(line)), [], service);
  }
});

Deno.test("an access key the README makes goes into the function's secrets unprinted", () => {
  const made = shellCommands().filter((line) => /create-access-key/.test(line));
  assert.ok(made.length >= 2, "the reader's and the writer's");
  for (const line of made) {
    assert.match(
      line,
      /--query '\[AccessKey\.AccessKeyId, AccessKey\.SecretAccessKey\]' --output text \| \{ read -r id secret$/,
    );
  }
  // With --yes: through a pipe the CLI cannot ask for its confirmation, and without it
  // changes nothing while the key's secret, shown once, is lost.
  const piped = README.match(
    /\{ read -r id secret\n\s*npx supabase secrets set --yes \w+="\$id" \w+="\$secret"; \}/g,
  );
  assert.equal(
    piped?.length,
    made.length,
    "each read straight into `supabase secrets set --yes`",
  );
});

Deno.test("the commands an operator deploys with install nothing of the local stack", () => {
  const scripts = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
    .scripts as Record<string, string>;
  for (const name of ["build:lambda", "backfill", "stream:replay"]) {
    assert.ok(scripts[name], name);
    assert.doesNotMatch(scripts[name], /bootstrap/, `${name}: ${scripts[name]}`);
  }
});

Deno.test("the rollback keeps what it needs: the writer's key made active again, the divergent keys past the listing's cap", () => {
  const rollback = README.slice(
    README.indexOf("### Rolling back"),
    README.indexOf("### Taking it down"),
  );
  assert.match(rollback, /checksum_max_listed/, "a long cutover's divergent keys");
  assert.match(rollback, /--status Active/, "the writer's key before write-back is on");
  assert.ok(
    rollback.indexOf("--status Active") <
      rollback.lastIndexOf("value = 'on' where key = 'write_back'"),
    "the key before write_back on",
  );
  assert.doesNotMatch(README, /aws iam delete-access-key --user-name <supabase_writer_user>/);
});
