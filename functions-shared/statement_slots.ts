/**
 * At most as many statements in flight on a connection pool as it has connections, the
 * others waiting their turn, in order: a {@link RunGate} sized to the pool, entered with
 * {@link whenAdmitted}.
 *
 * Why: postgres.js pipelines a statement behind another on a busy connection once every
 * connection of its pool is busy, unless the statement in front carries parameters
 * (then it waits for their types). Through PgBouncer in transaction mode, the answer to a
 * statement pipelined behind one without parameters is lost: PgBouncer hands the server
 * connection back to its pool at the first statement's end, the second's answer reaches
 * no client ("got packet ... from server when not linked" in its log), and its caller
 * waits for ever. The webhook's one-round-trip statement has no parameters
 * (webhook_apply.ts), so its calls go through these slots, sized to the pool.
 *
 * @module
 */

import { RunGate } from "./run_gate.ts";

const bySql = new WeakMap<object, RunGate>();

/**
 * The slots of a postgres.js pool, sized to its `max` connections (made once per pool);
 * undefined for an object with no such option (a test's fake).
 */
export function statementSlotsOf(sql: object): RunGate | undefined {
  const max = (sql as { options?: { max?: unknown } }).options?.max;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1) return undefined;
  let slots = bySql.get(sql);
  if (!slots) bySql.set(sql, slots = new RunGate(max));
  return slots;
}
