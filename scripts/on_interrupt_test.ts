import assert from "node:assert/strict";
import { DENO_BIN } from "../local-stack/config.ts";

/** A command that stops something on an interrupt (a file written), then waits. */
const COMMAND = `
import { onInterrupt } from "${new URL("./on_interrupt.ts", import.meta.url).href}";
onInterrupt(async (signal) => {
  await new Promise((resolve) => setTimeout(resolve, 50));
  Deno.writeTextFileSync(Deno.args[0], "stopped on " + signal);
});
console.log("ready");
setTimeout(() => {}, 60_000);
`;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`a ${signal} runs the command's stop, once, then exits 130`, async () => {
    const dir = Deno.makeTempDirSync();
    try {
      const script = `${dir}/command.ts`;
      Deno.writeTextFileSync(script, COMMAND);
      const child = new Deno.Command(DENO_BIN, {
        args: ["run", "-A", "--no-check", script, `${dir}/stopped`],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      assert.equal((await reader.read()).value?.trim(), "ready");
      child.kill(signal);
      child.kill(signal); // a second one meanwhile changes nothing
      const status = await child.status;
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
      assert.equal(status.code, 130);
      assert.equal(Deno.readTextFileSync(`${dir}/stopped`), `stopped on ${signal}`);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}
