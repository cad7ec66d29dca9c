import assert from "node:assert/strict";
import { isAlive, statFields } from "./proc_table.ts";
import { sleep } from "./processes.ts";

/** The state letter of a process in /proc (`Z`: exited, not reaped), or null when gone. */
const stateOf = (pid: number) => statFields(`/proc/${pid}/stat`)?.[0] ?? null;

Deno.test({
  name: "an exited process that its parent has not reaped (a zombie) is not alive",
  ignore: Deno.build.os !== "linux", // reads /proc
}, async () => {
  // `sleep 30` is the child of a process that never waits for it (the shell exec'd into
  // `sleep 60`), so once killed it stays a zombie, as the stack's parts do until this
  // machine's init reaps them.
  const parent = new Deno.Command("sh", {
    args: ["-c", "sleep 30 & echo $!; exec sleep 60"],
    stdout: "piped",
  }).spawn();
  const reader = parent.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const pid = Number(new TextDecoder().decode(value).trim());
  try {
    assert.equal(isAlive(pid), true);
    // Killed before the shell has exec'd, the child is the shell's to reap, and it may
    // (a fresh clone under load failed so): wait until the parent is `sleep 60`.
    const parentCommand = () => Deno.readTextFile(`/proc/${parent.pid}/comm`).catch(() => "");
    for (
      let waited = 0;
      (await parentCommand()).trim() !== "sleep" && waited < 5_000;
      waited += 20
    ) {
      await sleep(20);
    }
    assert.equal((await parentCommand()).trim(), "sleep", "the shell exec'd sleep 60");
    Deno.kill(pid, "SIGKILL");
    for (let waited = 0; stateOf(pid) !== "Z" && waited < 5_000; waited += 20) await sleep(20);
    assert.equal(stateOf(pid), "Z", "the killed child is a zombie");
    assert.equal(isAlive(pid), false);
  } finally {
    if (pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already killed.
      }
    }
    parent.kill("SIGKILL");
    await parent.stdout.cancel();
    await parent.status;
  }
});
