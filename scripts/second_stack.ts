/**
 * The second stack of `npm test`: a copy of this checkout in `.local/second-stack/`
 * whose stack runs on ports of its own, for the end-to-end files that stop, restart or
 * reconfigure a part of the stack (scripts/e2e_plan.ts, `SECOND_STACK`). On the one
 * stack they ran one after another once every other file was done, and mostly waited
 * (PgBouncer's 15 s login retry after Postgres comes back, the proxy's restarts, the
 * stream poller's); on a stack of their own they run while the others do.
 *
 * A copy rather than a second `.local/` in this checkout: every part of the stack
 * already keeps to its own checkout (its `.local/`, its Postgres fallback folder under
 * /var/tmp, the pkill patterns of the files that kill a function's processes, which name
 * the checkout's path), as a developer's second worktree does with `STACK_PORT_OFFSET`.
 *
 * @module
 */

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import {
  DENO_BIN,
  LOCAL_DIR,
  localDirOf,
  PORT_OFFSET,
  postgresFallbackDir,
  ROOT,
} from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { STACK_CLUSTER } from "../local-stack/supabase/postgres_cluster.ts";

/** Where the copy lives: under `.local/`, which git, fmt, lint and the type check skip. */
export const SECOND_STACK_DIR: string = join(LOCAL_DIR, "second-stack");

/**
 * The second stack's `STACK_PORT_OFFSET`: 500 more than this checkout's (500 less above
 * 500, since an offset may not pass 1,000), clear of the ports of the stack and of the
 * clusters and gateways the end-to-end files start of their own.
 */
export function secondStackOffset(offset: number = PORT_OFFSET): number {
  return offset <= 500 ? offset + 500 : offset - 500;
}

/** The environment of every command run in the copy: its ports. */
export function secondStackEnv(offset: number = PORT_OFFSET): Record<string, string> {
  return { STACK_PORT_OFFSET: String(secondStackOffset(offset)) };
}

/**
 * The files of the checkout at `root` as its working tree has them: git's tracked files
 * that still exist and its untracked files that .gitignore does not exclude (what a
 * commit of the working tree would hold), relative to `root`.
 */
export async function checkoutFiles(root: string): Promise<string[]> {
  let listed: string;
  try {
    // A checkout another user owns (CI cloning as one user, testing as root) is one git
    // refuses to read ("dubious ownership") unless named safe on the command line.
    listed = await run(
      "git",
      [
        "-c",
        `safe.directory=${root}`,
        "-C",
        root,
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
      ],
      { stdoutOnly: true },
    );
  } catch (error) {
    throw new Error(
      `the second stack copies this checkout's files as git lists them, and git could not ` +
        `list them in ${root}: ${(error as Error).message}`,
    );
  }
  const files = [...new Set(listed.split("\0").filter((path) => path !== ""))];
  return files.filter((path) => existsSync(join(root, path)));
}

/** Written last into a copy: only a whole copy may have started a stack. */
const COPIED = ".copied";

/**
 * Makes a fresh copy of the checkout at `root` in `dir`: first stops the stack of a whole
 * copy an earlier run left (a run killed before its end; a copy cut short started none)
 * and removes it with its Postgres cluster, then copies {@link checkoutFiles} and links
 * `node_modules` (the copy runs the same installed programs). Returns how many files it
 * copied.
 */
export async function copyCheckout(root: string = ROOT, dir: string = SECOND_STACK_DIR) {
  const pids = join(localDirOf(dir), "pids");
  const whole = existsSync(join(dir, COPIED));
  if (!whole && existsSync(pids) && readdirSync(pids).length > 0) {
    throw new Error(
      `${dir} holds pid files but is not marked a whole copy: stop what ${pids} names, ` +
        `then delete ${dir}`,
    );
  }
  if (whole) {
    try {
      await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "down"], {
        cwd: dir,
        env: secondStackEnv(),
      });
    } catch (error) {
      throw new Error(
        `the second stack an earlier run left in ${dir} could not be stopped; stop what ` +
          `its pid files (${pids}) name, then delete ${dir}: ` +
          (error as Error).message,
      );
    }
  }
  rmSync(postgresFallbackDir(dir), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  const files = await checkoutFiles(root);
  for (const path of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    copyFileSync(join(root, path), join(dir, path));
  }
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, COPIED), `a copy of ${root} for npm test's second stack\n`);
  return files.length;
}

/**
 * Removes the Postgres cluster's data of the copy in `dir` (its stack stopped): in the
 * copy's `.local/`, or in its folder under /var/tmp when the stack ran as root (a fresh
 * `mktemp -d` clone each CI run would leave one there every time). Its log stays.
 */
export function removeStackData(dir: string = SECOND_STACK_DIR): void {
  for (const data of [localDirOf(dir), postgresFallbackDir(dir)]) {
    rmSync(join(data, STACK_CLUSTER.name), { recursive: true, force: true });
  }
}
