import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brokenLinks, headingFragments, headingSlug } from "./doc_links.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("a heading's fragment is GitHub's", () => {
  assert.equal(headingSlug("Where the time goes: `npm test`"), "where-the-time-goes-npm-test");
  assert.equal(
    headingSlug("The live path: DynamoDB Streams → Lambda → webhook → Postgres"),
    "the-live-path-dynamodb-streams--lambda--webhook--postgres",
  );
  assert.equal(
    headingSlug("1. Supabase: schema, secrets, functions"),
    "1-supabase-schema-secrets-functions",
  );
  assert.equal(
    headingSlug("Validation (`data-checksum-validator`)"),
    "validation-data-checksum-validator",
  );
});

Deno.test("a repeated heading gets the first free suffix, and a fenced block has none", () => {
  const fragments = headingFragments(
    "# A\n## Earlier\n```sh\n# not a heading\n```\n## Earlier\n## Earlier 1\n## Earlier\n",
  );
  assert.deepEqual([...fragments], ["a", "earlier", "earlier-1", "earlier-1-1", "earlier-2"]);
});

Deno.test("a link to a missing file or heading is named, with its file", () => {
  const root = mkdtempSync(join(tmpdir(), "doc-links-"));
  try {
    mkdirSync(join(root, "docs"));
    writeFileSync(join(root, "docs", "b.md"), "# B\n## Kept\n");
    writeFileSync(
      join(root, "README.md"),
      "[ok](docs/b.md#kept) [moved](docs/b.md#gone) [none](docs/c.md) [web](https://x.y/#z) [self](#missing)\n" +
        '[titled](docs/b.md#gone2 "a title") `[in code](docs/d.md)`\n```md\n[fenced](docs/e.md)\n```\n',
    );
    assert.deepEqual(brokenLinks(root, "README.md"), [
      "README.md: docs/b.md#gone (no heading of docs/b.md makes #gone)",
      "README.md: docs/c.md (no file docs/c.md)",
      "README.md: #missing (no heading of README.md makes #missing)",
      "README.md: docs/b.md#gone2 (no heading of docs/b.md makes #gone2)",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("every link in the README, the CHANGELOG and docs/ leads somewhere", () => {
  const files = [
    "README.md",
    "CHANGELOG.md",
    ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
  ];
  assert.deepEqual(files.flatMap((f) => brokenLinks(ROOT, f)), []);
});
