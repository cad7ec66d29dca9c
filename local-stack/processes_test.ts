import assert from "node:assert/strict";
import { isAlive, sleep } from "./processes.ts";

/** The state letter of a process in /proc (`Z`: exited, not reaped), or null when gone. */
function stateOf(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.charAt(stat.lastIndexOf(")") + 2);
  } catch {
    return null;
  }
}

Deno.test("an exited process that its parent has not reaped (a zombie) is not alive", async () => {
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
    Deno.kill(pid, "SIGKILL");
    for (let waited = 0; stateOf(pid) !== "Z" && waited < 5_000; waited += 20) await sleep(20);
    assert.equal(stateOf(pid), "Z", "the killed child is a zombie");
    assert.equal(isAlive(pid), false);
  } finally {
    parent.kill("SIGKILL");
    await parent.stdout.cancel();
    await parent.status;
  }
});

Deno.test("sleep with a delay already passed resolves at once", async () => {
  const started = performance.now();
  await sleep(-755);
  assert.ok(performance.now() - started < 1_000);
});
