/**
 * What /proc tells of the machine's processes, for the local stack's parts
 * (processes.ts) and `npm test`'s steps (scripts/on_interrupt.ts): a process's stat
 * fields and start, whether it is still running, the members of its process group, the
 * processes it started. Where there is no /proc (not Linux), each answers what it can:
 * nothing, or the kernel's word by a signal.
 *
 * @module
 */

/**
 * When process `pid` started, as this boot of the machine tells it: the boot's id and the
 * process's start time in clock ticks since the boot (`/proc/<pid>/stat`, field 22), which
 * no other process of the boot shares with it; undefined without /proc.
 */
export function processStart(pid: number): string | undefined {
  const started = statFields(`/proc/${pid}/stat`)?.[19];
  let boot: string;
  try {
    boot = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return undefined;
  }
  return started === undefined ? undefined : `${boot}:${started}`;
}

/**
 * The fields of a /proc `stat` file after the command's closing parenthesis (state,
 * parent pid, process group, ...; the command itself may hold spaces and parentheses),
 * or null when the process or thread is gone. `readText` reads the file (tests give one).
 */
export function statFields(
  path: string,
  readText: (path: string) => string = (path) => Deno.readTextFileSync(path),
): string[] | null {
  try {
    const stat = readText(path);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/**
 * Whether a process is running: whether any of its threads has not exited. An exited
 * process that its parent has not reaped yet (a zombie, state `Z` in /proc) still takes
 * signals, but is not running: the stack's detached processes are reparented to this
 * machine's init, which reaps them only every few seconds, and stopping each part waited
 * about 2 s for that. The threads count, not the leader alone: while a process exits,
 * its leader turns `Z` before the other threads are gone, and they still hold its files
 * (a part's listening port) until they are.
 */
export function isAlive(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)].map((entry) => entry.name);
  } catch {
    // No /proc (not Linux), no such process, or one /proc does not show us: ask the kernel.
    try {
      Deno.kill(pid, "SIGCONT");
      return true;
    } catch {
      return false;
    }
  }
  return tasks.some((task) => {
    const state = statFields(`/proc/${pid}/task/${task}/stat`)?.[0];
    return state !== undefined && state !== "Z" && state !== "X";
  });
}

/** Every process /proc shows, with its stat fields (none where there is no /proc). */
function processStats(): { pid: number; fields: string[] }[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/proc")];
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    if (!/^\d+$/.test(entry.name)) return [];
    const fields = statFields(`/proc/${entry.name}/stat`);
    return fields ? [{ pid: Number(entry.name), fields }] : [];
  });
}

/**
 * The running processes of process group `pgid` (a detached part's pid is its group's id:
 * the gateway's isolates are in it), from /proc; none where there is no /proc.
 */
export function groupMembers(pgid: number): number[] {
  return processStats()
    .filter(({ pid, fields }) => Number(fields[2]) === pgid && isAlive(pid))
    .map(({ pid }) => pid);
}

/** The processes `pid` started, and theirs, from /proc; none where there is no /proc. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const { pid: child, fields } of processStats()) {
    const parent = Number(fields[1]);
    children.set(parent, [...children.get(parent) ?? [], child]);
  }
  const found: number[] = [];
  for (let next = children.get(pid) ?? []; next.length > 0;) {
    found.push(...next);
    next = next.flatMap((p) => children.get(p) ?? []);
  }
  return found;
}
