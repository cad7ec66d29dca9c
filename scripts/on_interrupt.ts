/**
 * What a command does when it is interrupted (Ctrl-C, or CI's SIGTERM at its timeout):
 * the signal reaches the command and the steps it runs, not the local stack's servers,
 * which run in sessions of their own; a command that started them stops them first.
 *
 * @module
 */

/**
 * Runs `stop` once, on the first SIGINT or SIGTERM (another meanwhile is ignored), then
 * exits 130, as a shell does for a command that SIGINT ended.
 */
export function onInterrupt(stop: (signal: Deno.Signal) => Promise<unknown>): void {
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      if (stopping) return;
      stopping = true;
      stop(signal).catch((error) => console.error(error)).finally(() => Deno.exit(130));
    });
  }
}
