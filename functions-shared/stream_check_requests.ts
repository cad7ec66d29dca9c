/**
 * The `stream-check` function's requests (docs/interfaces.md, "stream-check"): a POST
 * with a service key, body `{}` (every table) or `{"tables": [...]}`, runs the check
 * (stream_check_run.ts) and answers its report. A run whose budget left tables or shards
 * unread hands them on to a new request of the function, `{"tables": [...],
 * "handOn": n, "since": "<when the chain began>"}`, which is answered 202 at once and
 * runs in the background: a stream that takes more than one run's budget to read is read
 * in one go, a run after another, instead of an hour apart; a successor reads only the
 * shards no run of its chain read whole, so the chain ends once each was read. A chain
 * stops after {@link MAX_HAND_ONS} runs; the hourly run goes on from where it stopped.
 *
 * An isolate takes {@link RUNS_PER_ISOLATE} runs at a time (run_gate.ts), so that the
 * hourly run is not turned away by a chain's: a request beyond them answers 429, a
 * hand-on 503 (its caller logs it; the hourly run goes on). Each run has its own allowance
 * of CPU from its start, and none reads past the isolate's ceiling
 * (stream_check_budget.ts): the runtime retires an isolate once it passes its 1,000 ms
 * soft limit, so runs on an isolate not yet retired end under the 2,000 ms hard limit.
 *
 * @module
 */

import { errorResponse, json, methodNotAllowed } from "./http.ts";
import type { RunGate } from "./run_gate.ts";
import { internalCaller } from "./service_auth.ts";
import { runStreamCheck, type StreamCheckReport } from "./stream_check_run.ts";
import type { StreamCheckDeps } from "./stream_check_table.ts";
import { byTargetTable, TABLES, type TableSpec } from "./table_registry.ts";
import { MAX_CHECK_INTERVAL_MS } from "./stream_timing.ts";

/** The runs one chain of hand-ons may take: some 100 × 13 pages of 1 MB. */
export const MAX_HAND_ONS = 100;

/** A time as `Date.prototype.toISOString` writes it (the form the shards' `readAt` has). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The runs one isolate takes on at once. */
export const RUNS_PER_ISOLATE = 2;

/** What the handler needs besides a run's own (stream_check_run.ts). */
export interface StreamCheckRequestDeps extends StreamCheckDeps {
  serviceKeys: readonly string[];
  /** The isolate's gate, admitting {@link RUNS_PER_ISOLATE} runs. */
  gate: RunGate;
  /** Keeps work going after the answer (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  /** Starts another request of the function with `body` (self_invoke.ts). */
  callSelf: (body: unknown) => Promise<void>;
}

/** A request's body, checked. */
interface CheckRequest {
  tables: readonly TableSpec[];
  /** The run's place in a chain of hand-ons (1 for the first successor); 0: none. */
  handOn: number;
  /** When the chain's first run began (ISO 8601), for its successors. */
  since?: string;
}

/** The request's body, or what is wrong with it. */
function parseBody(text: string, now: number): CheckRequest | string {
  let body: unknown = {};
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch (error) {
      return `body is not valid JSON: ${(error as Error).message}`;
    }
  }
  // An object of these keys alone: anything else (the validator's {"table": ...}, a
  // typo) would read as "every table" and look like a success.
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return 'the body must be an object: {"tables": [...]}, or {} for every table';
  }
  const extra = Object.keys(body).filter((key) => !["tables", "handOn", "since"].includes(key));
  if (extra.length > 0) {
    return `unknown key(s) ${extra.map((key) => JSON.stringify(key)).join(", ")}: ` +
      'send {"tables": [...]}, or {} for every table';
  }
  const { tables: names, handOn = 0, since } = body as {
    tables?: unknown;
    handOn?: unknown;
    since?: unknown;
  };
  if (!Number.isInteger(handOn) || (handOn as number) < 0 || (handOn as number) > MAX_HAND_ONS) {
    return `handOn must be a whole number from 0 to ${MAX_HAND_ONS}`;
  }
  if (
    since !== undefined &&
    !(typeof since === "string" && ISO_TIME.test(since) && handOn !== 0 &&
      Math.abs(now - Date.parse(since)) <= MAX_CHECK_INTERVAL_MS)
  ) {
    return "since must be a time in ISO 8601 (UTC, as toISOString writes it), of a hand-on, " +
      "within the 3 hours a shard may go unread";
  }
  const chain = { handOn: handOn as number, ...(since ? { since: since as string } : {}) };
  if (names === undefined) return { tables: TABLES, ...chain };
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string") || names.length === 0) {
    return "tables must be a list of target table names (leave it out for every table)";
  }
  const unknown = names.filter((n) => !byTargetTable(n));
  if (unknown.length > 0) return `unknown target table(s): ${unknown.join(", ")}`;
  return { tables: names.map((n) => byTargetTable(n)!), ...chain };
}

/** Handles a request: POST with a service key. */
export async function handleStreamCheckRequest(
  req: Request,
  deps: StreamCheckRequestDeps,
): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  // pg_cron wakes it with a wake key (service_auth.ts): nothing here asks for more.
  const caller = internalCaller(req, deps.serviceKeys);
  if ("problem" in caller) return errorResponse(401, caller.problem);
  const request = parseBody(await req.text(), (deps.now ?? Date.now)());
  if (typeof request === "string") return errorResponse(400, request);
  // A wake key waits in pg_net's queue, which every database role may read: it starts
  // one check, as pg_cron's job does; a chain of hand-ons takes a service key.
  if (caller.caller === "wake" && (request.handOn > 0 || request.since !== undefined)) {
    return errorResponse(
      403,
      'a wake key (pg_cron\'s) may only start one check ({} or {"tables": [...]}); hand on with a service key',
    );
  }
  // A chain's first run began now: its successors do not read again what it read whole.
  const since = request.since ?? new Date((deps.now ?? Date.now)()).toISOString();
  const run = deps.gate.admit(() => runStreamCheck(request.tables, deps, request.since));
  if (!run) {
    const reason = `this isolate already runs ${deps.gate.active} lost-record checks`;
    if (request.handOn > 0) return errorResponse(503, reason, { "retry-after": "1" });
    return errorResponse(429, reason);
  }
  const ended = run.then((report) => handOn(report, request.handOn, since, deps));
  if (request.handOn > 0) {
    deps.waitUntil(ended.catch((error) => {
      deps.log?.(`stream-check: a handed-on run stopped: ${(error as Error).message}`);
    }));
    return json(202, { accepted: true });
  }
  const report = await ended;
  // Every table failed for want of the database: said as the other functions say it.
  if (report.checked.length > 0 && report.checked.every((t) => t.databaseUnavailable)) {
    return json(503, { error: "the database is unavailable; retry later", ...report }, {
      "retry-after": "5",
    });
  }
  return json(200, report);
}

/**
 * Hands what the run left on to a new request, while the chain has room; returns the
 * report, saying so.
 */
function handOn(
  report: StreamCheckReport,
  link: number,
  since: string,
  deps: StreamCheckRequestDeps,
): StreamCheckReport & { handedOn?: boolean } {
  if (report.left.length === 0) return report;
  if (link >= MAX_HAND_ONS) {
    deps.log?.(
      `stream-check: ${MAX_HAND_ONS} runs in a row left ${
        report.left.join(", ")
      } unfinished; the next hourly run reads on`,
    );
    return report;
  }
  deps.waitUntil(deps.callSelf({ tables: report.left, handOn: link + 1, since }));
  return { ...report, handedOn: true };
}
