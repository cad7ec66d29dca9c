/**
 * Background processes of the local stack: started in a session of their own (so that
 * stopping one stops its children too), with a pid file under `.local/pids` and a log
 * under `.local/logs`. The pid file's first line is the pid; its second, when given, is
 * the fingerprint of the code and settings the process was started with, so that
 * `stack:up` can tell whether a running process is still the one it would start; its
 * third, the process's start ({@link processStart}), so that a pid the system has given
 * to another process since (after a reboot, say) is not taken for it, nor signalled.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOG_DIR, PID_DIR } from "./config.ts";
import { groupMembers, isAlive, processStart } from "./proc_table.ts";

/** How to start one part of the stack. */
export interface ProcessSpec {
  /** Short name: the pid file and log are named after it. */
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** What the process was started with (a hash of its code and settings), kept in its pid file. */
  fingerprint?: string;
}

/** The log file of a part of the stack. */
export function logFile(name: string): string {
  return join(LOG_DIR, `${name}.log`);
}

function pidFile(name: string): string {
  return join(PID_DIR, `${name}.pid`);
}

/** A process of the stack that is alive, as its pid file records it. */
export interface RunningProcess {
  pid: number;
  /** The fingerprint it was started with; undefined when none was recorded. */
  fingerprint: string | undefined;
}

/**
 * The process recorded for `name`, if it is still alive and still the process recorded
 * (a pid file without its start, written before it was kept, is taken at its pid).
 */
export function runningProcess(name: string): RunningProcess | undefined {
  let lines: string[];
  try {
    lines = readFileSync(pidFile(name), "utf8").split("\n").map((line) => line.trim());
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  if (!(Number.isInteger(pid) && pid > 0 && isAlive(pid))) return undefined;
  if (lines[2] && processStart(pid) !== lines[2]) return undefined;
  return { pid, fingerprint: lines[1] || undefined };
}

/** The pid recorded for `name`, if that process is still alive. */
export function runningPid(name: string): number | undefined {
  return runningProcess(name)?.pid;
}

/** Starts a detached process whose output goes to its log; returns its pid. */
export function startDetached(spec: ProcessSpec): number {
  mkdirSync(LOG_DIR, { recursive: true });
  mkdirSync(PID_DIR, { recursive: true });
  const out = openSync(logFile(spec.name), "a");
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: { ...Deno.env.toObject(), ...spec.env },
    detached: true,
    stdio: ["ignore", out, out],
  });
  closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${spec.name}: ${spec.command}`);
  child.unref();
  const lines = [child.pid, spec.fingerprint ?? "", processStart(child.pid) ?? ""];
  writeFileSync(pidFile(spec.name), `${lines.join("\n")}\n`);
  return child.pid;
}

/** How long a SIGKILLed process may take to stop running (it is not ours to reap). */
const KILLED_MS = 2_000;

/**
 * Stops a detached process and everything in its process group: SIGTERM, then SIGKILL
 * after `graceMs` to whatever of the group still runs, and a wait of up to 2 s for it to
 * stop (a SIGKILL is delivered, not done, when `kill` returns: a loaded machine showed a
 * killed member still running just after). Returns whether something was running.
 */
export async function stopDetached(name: string, graceMs = 10_000): Promise<boolean> {
  const pid = runningPid(name);
  rmSync(pidFile(name), { force: true });
  if (pid === undefined) return false;
  signalGroup(pid, "SIGTERM");
  const running = () => isAlive(pid) || groupMembers(pid).length > 0;
  const deadline = Date.now() + graceMs;
  while (running() && Date.now() < deadline) await sleep(100);
  if (!running()) return true;
  signalGroup(pid, "SIGKILL");
  const killed = Date.now() + KILLED_MS;
  while (running() && Date.now() < killed) await sleep(20);
  if (running()) {
    console.error(
      `${name}: process group ${pid} still runs ${KILLED_MS} ms after SIGKILL (its ports may be taken)`,
    );
  }
  return true;
}

function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    try {
      Deno.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Resolves after `ms` milliseconds; at once (on the next turn) when `ms` is not positive,
 * such as a deadline already passed (Node's timers warn of a negative delay).
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes; on timeout throws an error
 * that names what was awaited and where its log is.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  log?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(
    `${what} did not become ready within ${timeoutMs / 1000}s` + (log ? `; see ${log}` : ""),
  );
}

/** The error for a port held by a process that is not this stack's; says how to find it. */
export function portTaken(port: number, part: string): Error {
  return new Error(
    `port ${port} (${part}) is taken by a process that is not this stack's: ` +
      `find it with \`ss -ltnp 'sport = :${port}'\`, stop it, then run \`npm run stack:up\` again`,
  );
}

/** Whether something accepts TCP connections on host:port. */
export async function portOpen(host: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: host, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a command to completion and returns what it printed (standard output and error,
 * or only standard output with `stdoutOnly`); throws with its output when it fails.
 */
export async function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; stdin?: string; stdoutOnly?: boolean } =
    {},
): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    env: options.env,
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout);
  const err = new TextDecoder().decode(stderr);
  if (code !== 0) {
    throw new Error(
      withoutPasswords(
        `${command} ${args.join(" ")} failed (exit ${code}):\n${(out + err).trim()}`,
      ),
    );
  }
  return options.stdoutOnly ? out : out + err;
}

/**
 * `text` with the password of every URL in it replaced by `***` (a database URL on a
 * command line, or echoed by the command, ends up in an error message and a CI log).
 */
export function withoutPasswords(text: string): string {
  // Up to the URL's last @: a password may hold an @ that was not percent-encoded, and
  // a / after it (the URL then names the wrong host, but the password is still hidden).
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s]*@/gi, "$1***@");
}
