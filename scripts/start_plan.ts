/**
 * How `npm start` orders its work (scripts/start.ts): the tables' load order, a
 * backfill's segments, the live phase's parts, the validator's places, and the small
 * promise tools the run is built from. Pure: nothing here touches the stack.
 *
 * @module
 */

import { RunGate, whenAdmitted } from "../functions-shared/run_gate.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";

/** The two big tables, in the order they load: their chains bound `npm start`. */
export const BIG_TABLES: readonly string[] = ["firespring_visitors", "firespring_actions"];

/**
 * The order of the load, one table at a time: the visitors first (their chain is the
 * longest: the most read units to backfill and to validate, and the collapsing merge),
 * then the actions, then the small tables. DynamoDB Local is a fresh JVM when the load
 * begins (`up({ freshSources: true })`), and loads beside one another shared its cold
 * start: the visitors took 26 s beside the small tables (whose backfills and validations
 * started isolates meanwhile) and 16 s alone; beside the actions, 26 s and 46 s. The small
 * tables' loads, backfills and validations then run during the visitors' backfill, which
 * waits on its read budget rather than on CPU. The import-worker claims segments in the
 * order the jobs were queued (sync.claim_segment), so this is also the backfills' order.
 */
export function loadOrder(tables: readonly TableSpec[]): TableSpec[] {
  return [
    ...BIG_TABLES.map((name) => tables.find((t) => t.targetTable === name)!).filter(Boolean),
    ...tables.filter((t) => !BIG_TABLES.includes(t.targetTable)),
  ];
}

/**
 * Scan segments for a table's backfill: one for a small table (its few pages take less
 * than a worker's start), four for a large one, so that two large tables share the
 * import-worker's eight concurrent segments (IMPORT_WORKER_MAX_CONCURRENT) instead of the
 * first taking all eight while the next waits; a table's read budget is shared by its
 * segments anyway (functions-shared/scan_pacing.ts).
 */
export function segmentsFor(items: number): number {
  return items < 5_000 ? 1 : 4;
}

/**
 * The live phase in parts, each run once its own tables are loaded: the big tables'
 * part (the visitors and the actions, loaded first: {@link loadOrder}), on which their
 * validations wait, and the small tables' part, once those are loaded after them.
 */
export function liveGroups(live: ReadonlySet<string>): Set<string>[] {
  return [
    new Set([...live].filter((t) => BIG_TABLES.includes(t))),
    new Set([...live].filter((t) => !BIG_TABLES.includes(t))),
  ].filter((group) => group.size > 0);
}

/**
 * Where each table's validation waits for a place at the validator's isolate, which takes
 * `places` runs at once (its VALIDATOR_RUNS_PER_ISOLATE; the gateway sends new requests to
 * the newest isolate, so more at once would only wait there, each leaving its table's read
 * budget unused). The table whose chain is the longest (the first of {@link loadOrder})
 * keeps a place of its own and starts the moment it is ready; the others share the rest,
 * in the order they become ready. When they all shared two places, the visitors' backfill
 * once ended while the actions and the admin's table held both, and their validation, the
 * run's last link, waited 2.4 s. With one place, every table shares it. (A table takes its
 * place once its stale window has passed: `main` waits it out first.)
 */
export function validationPlaces(
  tables: readonly TableSpec[],
  places: number,
): (table: string) => <T>(work: () => Promise<T>) => Promise<T> {
  const shared = atMost(Math.max(1, places - 1));
  if (places < 2) return () => shared;
  const longest = loadOrder(tables)[0]?.targetTable;
  const own = atMost(1);
  return (table) => table === longest ? own : shared;
}

/**
 * Runs the work given to it at most `n` at a time, starting each in the order it was
 * given; a failure frees its place as an end does.
 */
export function atMost(n: number): <T>(work: () => Promise<T>) => Promise<T> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`atMost takes 1 or more, not ${n}`);
  // The functions' own gate (run_gate.ts): places in arrival order, given back however
  // the work ends.
  const gate = new RunGate(n);
  return <T>(work: () => Promise<T>) => whenAdmitted(gate, work);
}

/** A promise and the functions that settle it (the first call wins). */
export function settleLater(): {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
} {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {}); // awaited where it matters; not an unhandled rejection here
  return { promise, resolve, reject };
}
