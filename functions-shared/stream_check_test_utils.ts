/**
 * Fakes for the `stream-check` tests (stream_check_run_test.ts,
 * stream_check_requests_test.ts): a database, a stream of shards, a meter, the handler's
 * dependencies.
 *
 * @module
 */

import type postgres from "postgres";
import type { CpuMeter } from "./cpu_meter.ts";
import { RunGate } from "./run_gate.ts";
import type { ShardState, StreamReader } from "./stream_shard.ts";
import type { StreamCheckRequestDeps } from "./stream_check_requests.ts";

/** The service key the fakes accept. */
export const KEY = "sb_secret_test";

/**
 * A database that answers every statement with `rows` and remembers what it was asked;
 * a table's lease (sync.take_stream_check_lease) is taken unless `rows` answers it.
 */
export function fakeSql(rows: (text: string, values: unknown[]) => unknown[] = () => []) {
  const statements: { text: string; values: unknown[] }[] = [];
  const answer = (text: string, values: unknown[]) => {
    text = text.replace(/\s+/g, " ").trim();
    statements.push({ text, values });
    const answered = rows(text, values);
    if (text.includes("sync.take_stream_check_lease") && answered.length === 0) {
      return Promise.resolve([{ taken: true }]);
    }
    return Promise.resolve(answered);
  };
  const sql = Object.assign(
    (strings: TemplateStringsArray, ...values: unknown[]) => answer(strings.join("$"), values),
    // unpipelined.ts's statements: text without parameters.
    { unsafe: (text: string, values: unknown[] = []) => answer(text, values) },
  ) as unknown as postgres.Sql;
  return { sql, statements };
}

/** The handler's dependencies, none of which is expected to be used unless given. */
export function deps(extra: Partial<StreamCheckRequestDeps> = {}): StreamCheckRequestDeps {
  return {
    sql: fakeSql().sql,
    serviceKeys: [KEY],
    streamArnOf: () => Promise.reject(new Error("not expected to read AWS")),
    readerOf: () => {
      throw new Error("not expected to read a stream");
    },
    cpu: meter(0),
    budget: { runCpuMs: 600, wallMs: 60_000 },
    gate: new RunGate(1),
    waitUntil: () => {},
    callSelf: () => Promise.reject(new Error("not expected to hand on")),
    log: () => {},
    ...extra,
  };
}

/** A POST of `body` with a service key. */
export const post = (body: string, key = KEY) =>
  new Request("http://localhost/stream-check", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body,
  });

/**
 * An estimating meter at `used` ms, which charges add to, known to run `ahead` ms ahead
 * of the isolate's CPU (cpu_meter.ts).
 */
export function meter(used: number, ahead = 0): CpuMeter & { used: number } {
  const cpu = {
    source: "estimate" as const,
    used,
    usedMs: () => cpu.used,
    measure: <T>(step: () => T) => step(),
    charge: (ms: number) => void (cpu.used += ms),
    requestArrived: () => {},
    aheadMs: () => ahead,
  };
  return cpu;
}

/** What `sync.stream_checks` holds of a table. */
export interface CheckRow {
  stream_arn: string;
  checked_at: Date;
  shards: Record<string, ShardState>;
}

/**
 * A database holding `sync.stream_checks` (`rows`, updated by each recorded run at
 * `now()`) in which every record a check asks about was applied.
 */
export function checksDb(rows: Map<string, CheckRow>, now: () => number) {
  return fakeSql((text, values) => {
    if (text.startsWith("select target_table, stream_arn, checked_at,")) {
      return [...rows].map(([target_table, row]) => {
        const reads = Object.values(row.shards).filter((s) => !s.done && s.readAt)
          .map((s) => Date.parse(s.readAt!));
        const oldest_read = reads.length ? new Date(Math.min(...reads)) : null;
        return {
          target_table,
          stream_arn: row.stream_arn,
          checked_at: row.checked_at,
          oldest_read,
        };
      });
    }
    if (text.includes("from sync.stream_checks where target_table")) {
      const row = rows.get(values[0] as string);
      return row ? [row] : [];
    }
    if (text.includes("stream_records_applied_of")) return [{ s: values[1] }];
    if (text.includes("record_stream_check")) {
      const table = values[0] as string;
      const before = rows.get(table) ?? { stream_arn: "", shards: {} };
      // A check's record (5 values), or a table marked for going unchecked (its state kept).
      rows.set(
        table,
        values.length === 5
          ? {
            stream_arn: values[1] as string,
            checked_at: new Date(now()),
            shards: JSON.parse(String(values[2])),
          }
          : { ...before, checked_at: new Date(now()) },
      );
      return [{ job: values.length === 5 ? null : 99 }];
    }
    return [];
  });
}

/**
 * A stream whose shards hold records numbered `from` to `to` (one a page, each a minute
 * old at `now`), after which an open shard answers empty pages.
 */
export function fakeStream(shards: Record<string, { from: number; to: number }>, now: number) {
  const reads: string[] = [];
  const reader: StreamReader = {
    shards: () => Promise.resolve(Object.keys(shards).map((id) => ({ id, closed: false }))),
    iterator: (id, position) => {
      const at = position === "oldest"
        ? shards[id].from - 1
        : "after" in position
        ? Number(position.after)
        : Number(position.at) - 1;
      return Promise.resolve(`${id}:${at}`);
    },
    read: (iterator) => {
      const [id, at] = iterator.split(":");
      reads.push(id);
      const seq = Number(at) + 1;
      const records = seq <= shards[id].to ? [{ seq: String(seq), createdAt: now - 60_000 }] : [];
      return Promise.resolve({ records, next: `${id}:${records.length ? seq : at}` });
    },
  };
  return { reader, reads };
}
