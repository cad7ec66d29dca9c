/**
 * A statement without parameters that nothing is pipelined behind.
 *
 * postgres.js writes a statement onto a connection still waiting for another's answer
 * (pipelining) once none of its pool's connections is idle. A statement with parameters
 * blocks that (it first asks Postgres for their types), one without parameters does not.
 * Through a transaction pooler (Supavisor or PgBouncer in transaction mode, port 6543),
 * a statement that is its own transaction gives the server connection back at its end,
 * so the answer to whatever was pipelined behind it reaches no client ("got packet ...
 * from server when not linked" in PgBouncer's log; supabase/supavisor#1061), and its
 * caller waits until the runtime kills the request. `sql.begin` is such a follower: its
 * `begin` has no parameters either, and is pipelined like any other statement.
 *
 * So the webhook's one-round-trip statement (webhook_apply.ts, its values in its text)
 * is sent with postgres.js's `onexecute` hook answering false, which marks its
 * connection full until the answer, exactly as a statement with parameters does: every
 * other statement then waits for an idle connection. (A gate that let only the pool's
 * size of these statements run at once, as before, kept them from following one another
 * but not a `begin`, a replay's or a batch with dead letters, from following one of
 * them; tests/pooler_test.ts shows the difference through the stack's PgBouncer.)
 * `sql.reserve()` would do the same, but a connection lost while reserved and then
 * released goes back to the pool without its socket, in postgres.js 3.4.9.
 *
 * Every other statement on a pool the functions share carries parameters (which marks
 * its connection full the same way through a transaction pooler) or runs inside
 * `sql.begin`; a new statement without parameters outside a transaction goes through
 * here.
 *
 * @module
 */

import type postgres from "postgres";

/**
 * The hook postgres.js 3.4.9 asks, after writing a statement, whether its connection
 * may take another before the answer (`connection.js`, `execute`); not in its types.
 */
const NOT_PIPELINED = { onexecute: () => false } as postgres.UnsafeQueryOptions;

/** Runs `text` (no parameters) so that no other statement follows it on its connection. */
export function unpipelined<T extends postgres.Row[] = postgres.Row[]>(
  sql: postgres.Sql,
  text: string,
): Promise<T> {
  return sql.unsafe<T>(text, [], NOT_PIPELINED) as unknown as Promise<T>;
}
