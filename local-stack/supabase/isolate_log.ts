/**
 * Reads `.local/logs/edge-isolates.jsonl`, the gateway's line per ended isolate
 * (local-stack/supabase/functions_gateway.ts, {@link IsolateLine}), from a given offset: what the
 * isolates of a test run, a benchmark section or `npm start` used and how they ended.
 *
 * @module
 */

import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LOG_DIR } from "../config.ts";
import type { IsolateLine } from "./edge_isolates.ts";
import type { KillReason } from "./edge_limits.ts";

/** The gateway's log of ended isolates. */
export const ISOLATES_LOG: string = isolatesLogIn(LOG_DIR);

/** The gateway's log of ended isolates in a log folder (another checkout's: `logDirOf` in config.ts). */
export function isolatesLogIn(logDir: string): string {
  return join(logDir, "edge-isolates.jsonl");
}

const KILL_REASONS: readonly string[] = [
  "CPUTime",
  "WallClockTime",
  "Memory",
] satisfies KillReason[];

/**
 * The functions that hand their work on before their isolate's CPU reaches the hard
 * limit (functions-shared/cpu_meter.ts): a kill of one of their isolates is a bug.
 */
export const HANDS_ON_FUNCTIONS: readonly string[] = [
  "import-worker",
  "data-checksum-validator",
  "write-back",
  "stream-check",
];

/** Whether an isolate that ended was killed at a hard limit. */
export function wasKilled(line: IsolateLine): boolean {
  return KILL_REASONS.includes(line.reason);
}

/** The log's length now: the offset to read from later. */
export function isolateLogOffset(log: string = ISOLATES_LOG): number {
  return existsSync(log) ? statSync(log).size : 0;
}

/** The text appended to a log (this one by default) since `offset`. */
export function logTextSince(offset: number, log: string = ISOLATES_LOG): string {
  return existsSync(log) ? readFileSync(log).subarray(offset).toString("utf8") : "";
}

/** The lines appended to the log since `offset`. */
export function isolateLinesSince(offset: number, log: string = ISOLATES_LOG): IsolateLine[] {
  return logTextSince(offset, log).split("\n").filter((line) => line.trim() !== "").map((line) =>
    JSON.parse(line) as IsolateLine
  );
}

/**
 * The isolates of the named functions killed at a hard limit since `offset`, each as one
 * sentence for an operator ("import-worker isolate 3 was killed for CPUTime after 2,013 ms
 * of CPU and 4 requests").
 */
export function killsSince(
  offset: number,
  functions: readonly string[],
  log: string = ISOLATES_LOG,
): string[] {
  return isolateLinesSince(offset, log)
    .filter((line) => functions.includes(line.function) && wasKilled(line))
    .map((line) =>
      `${line.function} isolate ${line.isolate} was killed for ${line.reason} after ` +
      `${Math.round(line.cpu_ms)} ms of CPU, ${Math.round(line.wall_ms)} ms of wall clock ` +
      `and ${line.requests} requests (ended ${line.ended_at})`
    );
}
