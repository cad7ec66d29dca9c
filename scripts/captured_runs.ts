/**
 * A command of `npm test` run with its output captured (scripts/step_runner.ts runs each
 * step through it): stdout and stderr interleaved as they come, its exit code, and its
 * CPU seconds (those of the processes it waited for too, by GNU time); run again while it
 * fails to reach what it checks ({@link runRetrying}), under `nice` when off the critical
 * path ({@link BACKGROUND}), and not at all once the run is interrupted (on_interrupt.ts).
 *
 * @module
 */

import { existsSync } from "node:fs";
import { ROOT } from "../local-stack/config.ts";
import { stepsInterrupted, trackStep } from "./on_interrupt.ts";
/**
 * GNU time, which reports the CPU a command and the processes it waited for used (the
 * rusage of its children): each step's CPU seconds, for the summary. Absent, steps run
 * bare and their CPU reads 0.
 */
const GNU_TIME = "/usr/bin/time";
const timeAvailable = existsSync(GNU_TIME);

/**
 * The niceness of a step off the run's critical path ({@link StepOptions.background}):
 * the two stacks' work (Postgres, DynamoDB Local, the isolates and the files that drive
 * them) decides when `npm test` ends, and these steps end well before it whatever their
 * share of the cores.
 */
export const BACKGROUND_NICENESS = 10;

/** Where a step's command runs: its folder (the repository's by default), its environment. */
export interface StepOptions {
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Off the critical path: the command (and whatever it starts) runs at
   * {@link BACKGROUND_NICENESS}, so that it takes what the stacks leave of the cores.
   */
  background?: boolean;
  /**
   * A failure whose output matches this is run again (the check could not reach what
   * it checks, e.g. a connection that timed out on a loaded machine): see
   * {@link runRetrying}.
   */
  retryOn?: RegExp;
  /** How many runs {@link retryOn} allows in all (2 unless said). */
  attempts?: number;
}

/** The options of a step off the critical path ({@link StepOptions.background}). */
export const BACKGROUND: StepOptions = { background: true };

/** The command and arguments that run `command` as `options` asks (under `nice`). */
function commandOf(
  command: string,
  args: string[],
  options: StepOptions = {},
): [string, string[]] {
  return options.background
    ? ["nice", ["-n", String(BACKGROUND_NICENESS), command, ...args]]
    : [command, args];
}

/**
 * Runs a command with its output captured; returns its exit code, output and CPU seconds
 * (user + system, its waited-for children included; 0 when GNU time is not installed).
 * Once the run is interrupted (on_interrupt.ts, `interruptSteps`) it starts nothing:
 * exit 130.
 */
export async function runCaptured(
  command: string,
  args: string[],
  options: StepOptions = {},
): Promise<{ code: number; output: string; cpu: number }> {
  if (stepsInterrupted()) {
    return { code: 130, output: "not run: npm test was interrupted\n", cpu: 0 };
  }
  const cpuFile = timeAvailable ? Deno.makeTempFileSync({ prefix: "step-cpu-" }) : undefined;
  const [program, programArgs] = commandOf(command, args, options);
  const child = new Deno.Command(cpuFile ? GNU_TIME : program, {
    args: cpuFile ? ["-q", "-f", "%U %S", "-o", cpuFile, program, ...programArgs] : programArgs,
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const untrack = trackStep(child);
  // stdout and stderr interleaved as they come, as a terminal would show them.
  let output = "";
  const decoder = () => new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const text = decoder();
    for await (const chunk of stream) output += text.decode(chunk, { stream: true });
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)])
    .finally(untrack);
  return { code: status.code, output, cpu: cpuFile ? readCpu(cpuFile) : 0 };
}

/**
 * {@link runCaptured}, and again while it fails with output matching `options.retryOn`,
 * up to `options.attempts` runs (2), 5 s apart: the answer is the last run's, its output
 * after the earlier ones' (kept for the log, marked), its CPU all runs'. `last` is the
 * last run's output alone.
 */
export async function runRetrying(
  command: string,
  args: string[],
  options: StepOptions = {},
  pauseMs = 5_000,
): Promise<{ code: number; output: string; cpu: number; last: string }> {
  let run = await runCaptured(command, args, options);
  let output = run.output;
  let cpu = run.cpu;
  for (let attempt = 2; attempt <= (options.attempts ?? 2); attempt++) {
    if (run.code === 0 || !options.retryOn?.test(run.output)) break;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    run = await runCaptured(command, args, options);
    output = `${output.trimEnd()}\n--- it could not reach what it checks: run once more ---\n` +
      run.output;
    cpu += run.cpu;
  }
  return { code: run.code, output, cpu, last: run.output };
}

/** The user + system seconds GNU time wrote (`%U %S`) to `file`, which it then removes. */
function readCpu(file: string): number {
  try {
    const line = Deno.readTextFileSync(file).trim().split("\n").pop() ?? "";
    const [user, system] = line.split(" ").map(Number);
    return Number.isFinite(user + system) ? user + system : 0;
  } finally {
    Deno.removeSync(file);
  }
}
