/**
 * A watch on the database while `npm run bench` runs: once a second, every client backend
 * whose statement has run for 5 s or more, or whose transaction has stood idle that long,
 * is named on standard error, once per episode, with its state, what it waits on and the
 * start of its statement.
 *
 * Twice in about 300 runs a validation stood still for a minute inside one statement
 * (docs/performance.md, "Validation"), and nothing said which. Postgres's log names a
 * statement over 5 s once it has ended, and only once it had arrived whole: this names
 * one while it runs, and a statement still arriving too (a transaction idle on
 * `ClientRead`).
 *
 * The bench's own measurements through `connectAdminDb` are left out, by their
 * application name (not by their role, the superuser's, which pg_net's worker shares):
 * their bulk `COPY`s, which take seconds by design, were ten of the eleven episodes of an
 * export bench at 100 copies. The eleventh, the bench's truncate of the targets waiting 6 s
 * for a lock, is still named: a wait, not work.
 *
 * @module
 */

import type postgres from "postgres";
import { ADMIN_CLIENT_NAME } from "./stack_clients.ts";

/** A backend that has stood still: running one statement, or idle in a transaction. */
export interface Stalled {
  pid: number;
  application: string;
  /** pg_stat_activity's state: `active`, `idle in transaction`, ... */
  state: string;
  /** `type/event` (e.g. `Client/ClientRead`, `Lock/transactionid`), or null. */
  wait: string | null;
  /** How long it has been in that state. */
  seconds: number;
  /** When that state began, as Postgres prints it: with the pid, the episode's name. */
  since: string;
  /** The start of its last statement, on one line. */
  query: string;
}

/**
 * The backends of the database that have stood still for $1 seconds or more, but this one
 * and the measurements' (application name $2).
 */
const STALLED_SQL = `
  select pid, coalesce(application_name, '') as application, state,
         case when wait_event is null then null else wait_event_type || '/' || wait_event end
           as wait,
         extract(epoch from clock_timestamp() - case when state = 'active' then query_start
                                                     else state_change end)::float8 as seconds,
         (case when state = 'active' then query_start else state_change end)::text as since,
         left(regexp_replace(query, '\\s+', ' ', 'g'), 160) as query
  from pg_catalog.pg_stat_activity
  where backend_type = 'client backend' and pid <> pg_catalog.pg_backend_pid()
    and application_name is distinct from $2
    and ((state = 'active' and query_start < clock_timestamp() - make_interval(secs => $1))
      or (state like 'idle in transaction%'
          and state_change < clock_timestamp() - make_interval(secs => $1)))`;

/** The line that names one stalled backend. */
export function stallLine(s: Stalled): string {
  const wait = s.wait ? `, waiting on ${s.wait}` : "";
  return `bench: stall watch: pid ${s.pid} (${s.application || "no application name"}) ` +
    `${s.state} for ${Math.round(s.seconds)} s${wait}: ${s.query}`;
}

/** The episodes named so far: a backend's state, by its pid and the moment it began. */
export class StallEpisodes {
  #named = new Set<string>();

  /** The backends of `rows` whose episode was not named before (and is now). */
  fresh(rows: Stalled[]): Stalled[] {
    return rows.filter((row) => {
      const episode = `${row.pid} ${row.since}`;
      if (this.#named.has(episode)) return false;
      this.#named.add(episode);
      return true;
    });
  }

  /** How many episodes were named. */
  get count(): number {
    return this.#named.size;
  }
}

/** How often the watch looks, and how long a backend must have stood still to be named. */
export interface WatchTimes {
  everyMs: number;
  overSeconds: number;
}

/**
 * Starts the watch on `sql` (a pool of its own: the watch must not take a connection a
 * timed path would have had), each episode written to `log`; `stop()` ends it and the
 * pool, and resolves to the number of episodes seen.
 */
export function watchStalls(
  sql: postgres.Sql,
  log: (line: string) => void = console.error,
  times: WatchTimes = { everyMs: 1_000, overSeconds: 5 },
): { stop(): Promise<number> } {
  const episodes = new StallEpisodes();
  let stopped = false;
  let wake = () => {};
  const loop = (async () => {
    while (!stopped) {
      try {
        const rows = await sql.unsafe(STALLED_SQL, [times.overSeconds, ADMIN_CLIENT_NAME]);
        for (const row of episodes.fresh(rows as unknown as Stalled[])) log(stallLine(row));
      } catch (error) {
        log(`bench: stall watch: could not read pg_stat_activity: ${(error as Error).message}`);
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, times.everyMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake();
      await loop;
      await sql.end();
      return episodes.count;
    },
  };
}
