/**
 * What a command does when it is interrupted (Ctrl-C, or CI's SIGTERM at its timeout):
 * the signal reaches the command and the steps it runs, not the local stack's servers,
 * which run in sessions of their own; a command that started them stops them first.
 *
 * @module
 */

import { descendantsOf } from "../local-stack/proc_table.ts";

/** The steps running now (captured_runs.ts's `runCaptured`). */
const running = new Set<Deno.ChildProcess>();
/** Set by {@link interruptSteps}: no step starts after it. */
let interrupted = false;

/**
 * Stops the run's steps (npm test interrupted): no command starts any more (each answers
 * exit 130 at once), and those running get `signal`, with everything they started (GNU
 * time passes no signal on to the command it times, nor a shell to its children, which
 * hold the step's output open).
 */
export function interruptSteps(signal: Deno.Signal = "SIGTERM"): void {
  interrupted = true;
  for (const child of running) {
    for (const pid of [child.pid, ...descendantsOf(child.pid)]) {
      try {
        Deno.kill(pid, signal);
      } catch {
        // Gone already.
      }
    }
  }
}

/** Whether the steps were interrupted: then no step may start. */
export function stepsInterrupted(): boolean {
  return interrupted;
}

/** Counts `child` among the steps running, until the function it returns is called. */
export function trackStep(child: Deno.ChildProcess): () => void {
  running.add(child);
  return () => void running.delete(child);
}

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
