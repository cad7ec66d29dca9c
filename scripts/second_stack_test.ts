import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../local-stack/processes.ts";
import { checkoutFiles, copyCheckout, secondStackEnv, secondStackOffset } from "./second_stack.ts";

/** A git checkout in a temporary folder with the given files, all committed. */
async function checkout(files: Record<string, string>): Promise<string> {
  const root = Deno.makeTempDirSync({ prefix: "second-stack-test-" });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  await run("git", ["-C", root, "init", "-q"]);
  await run("git", ["-C", root, "add", "-A"]);
  await run("git", [
    "-C",
    root,
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@example.com",
    "commit",
    "-qm",
    "files",
  ]);
  return root;
}

Deno.test("the second stack's offset is 500 away from this checkout's, within 0..1000", () => {
  assert.equal(secondStackOffset(0), 500);
  assert.equal(secondStackOffset(100), 600);
  assert.equal(secondStackOffset(500), 1000);
  assert.equal(secondStackOffset(700), 200);
  assert.deepEqual(secondStackEnv(0), { STACK_PORT_OFFSET: "500" });
});

Deno.test("the copy holds the working tree's files as a commit of it would, node_modules linked", async () => {
  const root = await checkout({
    ".gitignore": "node_modules\n.local/\n",
    "a.ts": "old",
    "dir/b.ts": "b",
    "gone.ts": "deleted in the working tree",
  });
  const target = Deno.makeTempDirSync({ prefix: "second-stack-copy-" });
  try {
    writeFileSync(join(root, "a.ts"), "changed, not committed");
    writeFileSync(join(root, "new.ts"), "untracked");
    rmSync(join(root, "gone.ts"));
    mkdirSync(join(root, ".local"));
    writeFileSync(join(root, ".local", "stack.env"), "ignored");
    mkdirSync(join(root, "node_modules"));

    assert.deepEqual((await checkoutFiles(root)).sort(), [
      ".gitignore",
      "a.ts",
      "dir/b.ts",
      "new.ts",
    ]);
    const copy = join(target, "copy");
    mkdirSync(copy);
    writeFileSync(join(copy, "left-by-an-earlier-run"), "");
    assert.equal(await copyCheckout(root, copy), 4);
    assert.equal(readFileSync(join(copy, "a.ts"), "utf8"), "changed, not committed");
    assert.equal(readFileSync(join(copy, "dir", "b.ts"), "utf8"), "b");
    assert.ok(!existsSync(join(copy, "gone.ts")));
    assert.ok(!existsSync(join(copy, ".local")));
    assert.ok(!existsSync(join(copy, "left-by-an-earlier-run")));
    assert.equal(readlinkSync(join(copy, "node_modules")), join(root, "node_modules"));
    assert.ok(existsSync(join(copy, ".copied")), "a whole copy is marked, last");
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
});

Deno.test("a folder git cannot list is refused, naming it", async () => {
  const root = Deno.makeTempDirSync({ prefix: "second-stack-not-git-" });
  try {
    await assert.rejects(
      checkoutFiles(root),
      (error: Error) => error.message.includes(`git could not list them in ${root}`),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

Deno.test({
  name:
    "a checkout another user owns is listed all the same (CI may clone as one user and test as root)",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const root = await checkout({ "a.ts": "a" });
    try {
      await run("chown", ["-R", "nobody", root]);
      assert.deepEqual(await checkoutFiles(root), ["a.ts"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
});
