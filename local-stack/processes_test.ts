import assert from "node:assert/strict";
import { join } from "node:path";
import { LOG_DIR, PID_DIR } from "./config.ts";
import { groupMembers, isAlive, processStart } from "./proc_table.ts";
import {
  run,
  runningProcess,
  sleep,
  startDetached,
  stopDetached,
  withoutPasswords,
} from "./processes.ts";

Deno.test({
  name: "stopping a part stops its whole process group, and does not wait for init's reaping",
  ignore: Deno.build.os !== "linux",
}, async () => {
  const part = `processes-test-${crypto.randomUUID().slice(0, 8)}`;
  // A leader that exits on SIGTERM at once, and a member of its group that ignores it.
  const pid = startDetached({
    name: part,
    command: "sh",
    args: ["-c", "sh -c 'trap \"\" TERM; sleep 30' & sleep 30"],
    cwd: Deno.cwd(),
  });
  await sleep(200);
  // Counting the group's zombies (init reaps them later) as running would make it wait
  // past SIGKILL and say so: no such line.
  const said: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => said.push(args.join(" "));
  let stopped: boolean;
  try {
    stopped = await stopDetached(part, 1_000);
  } finally {
    console.error = error;
  }
  assert.equal(stopped, true);
  assert.deepEqual(said, [], "nothing of the group still runs after SIGKILL");
  Deno.removeSync(join(LOG_DIR, `${part}.log`));
  for (let waited = 0; waited < 2_000; waited += 50) {
    if (!isAlive(pid)) break;
    await sleep(50);
  }
  assert.equal(isAlive(pid), false, "the leader");
  // The group may still hold zombies (init reaps them later), but nothing that runs.
  assert.deepEqual(groupMembers(pid), [], "a member of the group that ignored SIGTERM");
});

Deno.test({
  name: "a pid file whose pid another process has since is not that part: not taken, not stopped",
  ignore: Deno.build.os !== "linux",
}, async () => {
  const part = `processes-test-${crypto.randomUUID().slice(0, 8)}`;
  // Another process, in a group of its own, at the pid the part's file names (a pid the
  // system gave again, after a reboot say); the file's start is the part's, not its.
  const other = new Deno.Command("setsid", { args: ["sleep", "30"] }).spawn();
  const file = join(PID_DIR, `${part}.pid`);
  try {
    await sleep(100);
    Deno.mkdirSync(PID_DIR, { recursive: true });
    Deno.writeTextFileSync(file, `${other.pid}\nfingerprint\n${processStart(other.pid)}0\n`);
    assert.equal(runningProcess(part), undefined, "not taken for the part");
    assert.equal(await stopDetached(part, 100), false, "nothing of the part to stop");
    assert.equal(isAlive(other.pid), true, "the other process is left alone");
    // Its own start: it is the part.
    Deno.writeTextFileSync(file, `${other.pid}\nfingerprint\n${processStart(other.pid)}\n`);
    assert.deepEqual(runningProcess(part), { pid: other.pid, fingerprint: "fingerprint" });
  } finally {
    Deno.removeSync(file);
    other.kill("SIGKILL");
    await other.status;
  }
});

Deno.test("a part started detached records its start in its pid file", async () => {
  const part = `processes-test-${crypto.randomUUID().slice(0, 8)}`;
  const pid = startDetached({ name: part, command: "sleep", args: ["30"], fingerprint: "f" });
  try {
    const lines = Deno.readTextFileSync(join(PID_DIR, `${part}.pid`)).split("\n");
    assert.deepEqual(lines.slice(0, 3), [String(pid), "f", processStart(pid) ?? ""]);
    assert.deepEqual(runningProcess(part), { pid, fingerprint: "f" });
  } finally {
    await stopDetached(part, 1_000);
    Deno.removeSync(join(LOG_DIR, `${part}.log`));
  }
});

Deno.test("sleep with a delay already passed resolves at once", async () => {
  // Before a timer of 0 set after it: a negative delay is no delay.
  const order: string[] = [];
  const slept = sleep(-755).then(() => order.push("slept"));
  const timer = new Promise((resolve) => setTimeout(resolve, 0)).then(() => order.push("timer"));
  await Promise.all([slept, timer]);
  assert.deepEqual(order, ["slept", "timer"]);
});

Deno.test("a failed command's error shows no URL's password", async () => {
  const url = "postgresql://postgres.abcdref:S3cret%21PW@127.0.0.1:1/postgres?sslmode=require";
  assert.equal(
    withoutPasswords(`--remote=${url} and https://u:p@host/x`),
    "--remote=postgresql://postgres.abcdref:***@127.0.0.1:1/postgres?sslmode=require and https://u:***@host/x",
  );
  assert.equal(
    withoutPasswords("postgresql://127.0.0.1:54322/postgres"),
    "postgresql://127.0.0.1:54322/postgres",
  );
  assert.equal(
    withoutPasswords("postgresql://postgres:se@cret@db:5432/x"),
    "postgresql://postgres:***@db:5432/x",
    "an @ in the password, not percent-encoded",
  );
  assert.equal(
    withoutPasswords("postgresql://postgres:Sup3r@Secret/Pass@db:5432/x and more"),
    "postgresql://postgres:***@db:5432/x and more",
    "and a / after it",
  );
  await assert.rejects(
    run("sh", ["-c", `echo "cannot connect to ${url}" >&2; exit 3`, url]),
    (error: Error) => {
      assert.match(error.message, /failed \(exit 3\)/);
      assert.doesNotMatch(error.message, /S3cret/);
      assert.match(error.message, /postgres\.abcdref:\*\*\*@127\.0\.0\.1/);
      return true;
    },
  );
});
