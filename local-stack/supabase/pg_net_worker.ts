/**
 * The background worker of our pg_net emulation (sql/extensions/pg_net--0.14.0.sql):
 * sends the HTTP requests that `net.http_get/post/delete` queued, after their
 * transaction committed, and records each outcome in `net._http_response`, the way
 * pg_net's own background worker does (batches of 200; a batch whose answers could not
 * be recorded stays queued and goes again). Like pg_net, it also deletes responses older
 * than the `pg_net.ttl` setting (default 6 hours), at most a batch at each turn of its
 * loop, oldest first.
 *
 * As pg_net's worker (src/worker.c since 0.19: one transaction per turn, then
 * `WaitLatch(..., 1000)`, "slow down queue processing to avoid using too much CPU"):
 * - a turn takes its batch off the queue, sends it and records the answers in one
 *   transaction, so the batch stays in `net.http_request_queue` until its answers are
 *   in `net._http_response`, and a worker that dies mid-batch leaves it queued;
 * - after every turn, busy or not, it waits a second or until a committed request
 *   wakes it (a wake that came during the turn ends the wait at once): a backlog past
 *   a batch goes out 200 a second unless new requests keep waking it.
 *
 * A trigger on the queue sends NOTIFY pg_net_request on commit (pg_net's wake at
 * commit). Idle, the worker also looks once a second, where hosted waits for a wake
 * alone: our notifications can be missed while the worker reconnects. It survives
 * database restarts by retrying with a pause.
 *
 * Run by `stack:up`; not meant to be started by hand.
 *
 * @module
 */

import postgres from "postgres";
import { readStackEnv } from "../stack_env.ts";
import { NO_DELAY } from "../../functions-shared/pg_socket.ts";
import { asAdminUrl } from "./postgres_cluster.ts";

const BATCH_SIZE = 200;
const POLL_MS = 1_000;
/** pg_net's default for `pg_net.ttl`, used when the setting is not set. */
const DEFAULT_RESPONSE_TTL = "6 hours";

interface QueuedRequest {
  id: string;
  method: "GET" | "POST" | "DELETE";
  url: string;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | null;
  timeout_milliseconds: number;
}

interface Outcome {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean;
  error_msg: string | null;
}

/**
 * A response body as pg_net stores it in `content`: as a C string, up to its first NUL
 * byte, and NULL when that leaves nothing (src/core.c, insert_response: the body is
 * stored only `if (handle->body && handle->body->data[0] != '\0')`).
 */
export function storedContent(body: string): string | null {
  const nul = body.indexOf("\u0000");
  const text = nul >= 0 ? body.slice(0, nul) : body;
  return text === "" ? null : text;
}

/**
 * The text pg_net records in `error_msg` for a request that got no answer: libcurl's
 * (src/core.c: `curl_easy_strerror`, and for a timeout src/errors.c's
 * `detailed_timeout_strerror`), never the client's own words or the URL. A timeout is
 * put at the HTTP step, as on a connection to the stack's own hosts; older libcurls
 * spell a failed look-up "Couldn't resolve host name", newer "Could not resolve hostname".
 */
export function curlErrorMessage(error: unknown, timeoutMs: number, elapsedMs: number): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    const ms = (n: number) => n.toFixed(6);
    return `Timeout of ${timeoutMs} ms reached. Total time: ${ms(elapsedMs)} ms (DNS time: ` +
      `${ms(0)} ms, TCP/SSL handshake time: ${ms(0)} ms, HTTP Request/Response time: ` +
      `${ms(elapsedMs)} ms)`;
  }
  // Deno puts the client's reason in `cause`: "fetch failed", cause "... tcp connect error".
  const cause = (error as Error)?.cause;
  const text = `${(error as Error)?.message ?? error} ${(cause as Error)?.message ?? ""}`;
  const badPort = text.match(/Requests to port (\d+) are blocked/);
  if (badPort) {
    return `(stand-in) Deno's fetch blocks port ${badPort[1]} (the fetch standard's bad ports); ` +
      "pg_net would send it";
  }
  if (/connection refused|tcp connect error/i.test(text)) return "Couldn't connect to server";
  if (/dns error|failed to lookup address|name or service not known/i.test(text)) {
    return "Couldn't resolve host name";
  }
  if (/connection closed before message completed/i.test(text)) {
    return "Server returned nothing (no headers, no data)";
  }
  return "Failure when receiving data from the peer";
}

/** Sends one queued request; never throws: failures become the outcome's error_msg. */
export async function send(request: QueuedRequest): Promise<Outcome> {
  const started = performance.now();
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.method === "GET" ? undefined : request.body,
      signal: AbortSignal.timeout(request.timeout_milliseconds),
    });
    return {
      id: request.id,
      status_code: response.status,
      content_type: response.headers.get("content-type"),
      headers: Object.fromEntries(response.headers),
      content: storedContent(await response.text()),
      timed_out: false,
      error_msg: null,
    };
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    return {
      id: request.id,
      status_code: null,
      content_type: null,
      headers: null,
      content: null,
      timed_out: timedOut,
      error_msg: curlErrorMessage(
        error,
        request.timeout_milliseconds,
        performance.now() - started,
      ),
    };
  }
}

/**
 * Deletes up to `batchSize` responses older than `pg_net.ttl` (6 hours when unset),
 * oldest first, as pg_net's worker does at each turn; returns how many it deleted.
 * The cluster's superuser (supabase_admin, whom the worker logs in as) changes it with
 * `alter system set pg_net.ttl = '1 hour'` and `select pg_reload_conf()`, as only the
 * platform can hosted.
 */
export async function deleteExpiredResponses(
  sql: postgres.Sql,
  batchSize: number = BATCH_SIZE,
): Promise<number> {
  const deleted = await sql`
    with expired as (
      select ctid from net._http_response
      where created < now() - coalesce(nullif(current_setting('pg_net.ttl', true), ''),
                                       ${DEFAULT_RESPONSE_TTL})::interval
      order by created
      limit ${batchSize}
    )
    delete from net._http_response r using expired e where r.ctid = e.ctid`;
  return deleted.count;
}

/**
 * One turn's batch, as pg_net takes it: up to {@link BATCH_SIZE} queued requests, oldest
 * first, taken off the queue, sent at once and their outcomes recorded, all in one
 * transaction; returns how many it sent.
 */
export async function drain(sql: postgres.Sql): Promise<number> {
  const outcomes = await sql.begin(async (tx) => {
    const requests = await tx<QueuedRequest[]>`
      delete from net.http_request_queue
      where id in (select id from net.http_request_queue order by id limit ${BATCH_SIZE})
      returning id, method, url, headers, body, timeout_milliseconds`;
    if (requests.length === 0) return [];
    const outcomes = await Promise.all(requests.map(send));
    await tx`
      insert into net._http_response
        (id, status_code, content_type, headers, content, timed_out, error_msg)
      select id, status_code, content_type, headers, content, timed_out, error_msg
      from jsonb_to_recordset(${tx.json(outcomes as unknown as postgres.JSONValue)}) as r(
        id bigint, status_code int, content_type text, headers jsonb, content text,
        timed_out boolean, error_msg text)`;
    return outcomes;
  });
  for (const o of outcomes) {
    console.log(`request ${o.id}: ${o.status_code ?? o.error_msg}`);
  }
  return outcomes.length;
}

/**
 * The worker's latch: {@link wake} ends the current wait, or the next one at once when
 * no wait is under way (a wake during a turn is not lost), as `SetLatch` does.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  /** Sets the latch. */
  wake(): void {
    this.#pending = true;
    this.#resolve?.();
  }

  /** Waits until woken or `ms` pass; resets the latch. Resolves with whether it was woken. */
  wait(ms: number): Promise<boolean> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#resolve = undefined;
        resolve(false);
      }, ms);
      this.#resolve = () => {
        clearTimeout(timer);
        this.#resolve = undefined;
        this.#pending = false;
        resolve(true);
      };
    });
  }
}

/** What a turn of the worker's loop uses; the real ones in the main block. */
export interface WorkerTurn {
  deleteExpired(): Promise<number>;
  drain(): Promise<number>;
  wakeup: Wakeup;
  /** How long a turn waits when not woken (one second, as pg_net). */
  waitMs: number;
}

/** One turn: expired answers, one batch, then the wait every turn ends with. */
export async function turn({ deleteExpired, drain, wakeup, waitMs }: WorkerTurn): Promise<void> {
  try {
    await deleteExpired();
    await drain();
  } catch (error) {
    console.error(`pg_net worker: ${(error as Error).message}; retrying`);
  }
  await wakeup.wait(waitMs);
}

if (import.meta.main) {
  // pg_net's worker runs as the bootstrap superuser (its `pg_net.username` defaults to
  // it): the platform's role, not the project's. Its connection turns Nagle's algorithm
  // off, as the functions' do and as libpq would (pg_socket.ts).
  const sql = postgres(asAdminUrl(readStackEnv().DATABASE_URL), {
    max: 2,
    onnotice: () => {},
    ...NO_DELAY,
  });
  const wakeup = new Wakeup();
  await sql.listen("pg_net_request", () => wakeup.wake()).catch((error) => {
    console.error(`LISTEN failed (will poll): ${error.message}`);
  });
  console.log("pg_net worker running");
  const parts: WorkerTurn = {
    deleteExpired: () => deleteExpiredResponses(sql),
    drain: () => drain(sql),
    wakeup,
    waitMs: POLL_MS,
  };
  while (true) await turn(parts);
}
