/**
 * Fakes for the unit tests of functions-shared/: a postgres.js `sql` that records every
 * statement and answers through a function the test gives, a DynamoDB client whose
 * `send` answers through another, and a clock for the pacing. No network, no database.
 *
 * @module
 */

import type postgres from "postgres";
import type { DynamoClient } from "./dynamo_http.ts";
import { aheadAtArrival, type CpuMeter } from "./cpu_meter.ts";
import type { PacingDeps } from "./scan_pacing.ts";
import type { StreamRecord } from "./webhook_envelope.ts";
import type { WriteBackEdit } from "./write_back_update.ts";

/** One statement the fake database was sent. */
export interface Statement {
  /** The query, whitespace collapsed, parameters as `$1`, `$2`, ... (identifiers inline). */
  text: string;
  /** The parameters, in order. */
  values: unknown[];
  /** The transaction it ran in (1, 2, ... in order of `begin`), 0 outside any. */
  tx: number;
}

/**
 * Answers a statement with its rows; `undefined` means the test did not expect it (the
 * statement then fails). Throwing (or rejecting) makes the statement fail with that error.
 */
export type Responder = (
  statement: Statement,
) => unknown[] | undefined | Promise<unknown[] | undefined>;

/** What a fake database saw. */
export interface FakeSql {
  sql: postgres.Sql;
  statements: Statement[];
  /** Transactions begun, committed and rolled back. */
  transactions: { begun: number; committed: number; rolledBack: number };
  /** The statements whose text matches `pattern`. */
  matching(pattern: RegExp | string): Statement[];
}

/** An identifier, as `sql("name")` makes it in postgres.js. */
class Identifier {
  constructor(readonly name: string) {}
}

const squash = (text: string) => text.replace(/\s+/g, " ").trim();

/**
 * A fake postgres.js `sql`: tagged templates, `sql(identifier)`, `unsafe`, `begin` (a
 * rejected transaction counts as rolled back) and `savepoint` (runs on the same
 * transaction).
 */
export function fakeSql(respond: Responder): FakeSql {
  const statements: Statement[] = [];
  const transactions = { begun: 0, committed: 0, rolledBack: 0 };
  const run = (text: string, values: unknown[], tx: number): Promise<unknown[]> => {
    const statement = { text: squash(text), values, tx };
    statements.push(statement);
    return Promise.resolve().then(async () => {
      const rows = await respond(statement);
      if (rows === undefined) {
        throw new Error(`the fake database does not know: ${statement.text}`);
      }
      return rows;
    });
  };
  const make = (tx: number) => {
    const sql = (first: unknown, ...rest: unknown[]) => {
      if (!Array.isArray(first) || !("raw" in first)) return new Identifier(String(first));
      const strings = first as unknown as TemplateStringsArray;
      let text = strings[0];
      const values: unknown[] = [];
      rest.forEach((value, i) => {
        if (value instanceof Identifier) text += `"${value.name}"`;
        else {
          values.push(value);
          text += `$${values.length}`;
        }
        text += strings[i + 1];
      });
      return run(text, values, tx);
    };
    return Object.assign(sql, {
      unsafe: (query: string, params: unknown[] = []) => run(query, params, tx),
      savepoint: (work: (sp: unknown) => Promise<unknown>) => work(sql),
      begin: async (work: (tx: unknown) => Promise<unknown>) => {
        const id = ++transactions.begun;
        try {
          const result = await work(make(id));
          transactions.committed++;
          return result;
        } catch (error) {
          transactions.rolledBack++;
          throw error;
        }
      },
    });
  };
  return {
    sql: make(0) as unknown as postgres.Sql,
    statements,
    transactions,
    matching: (pattern) =>
      statements.filter((s) =>
        typeof pattern === "string" ? s.text.includes(pattern) : pattern.test(s.text)
      ),
  };
}

/** A command the fake DynamoDB client was sent: its class name and input. */
export interface SentCommand {
  name: string;
  input: Record<string, unknown>;
  /** What the sender asked to run before each of the client's retries (dynamo_http.ts). */
  beforeRetry?: () => Promise<void>;
  /** The signal the sender may abort the request with. */
  abortSignal?: AbortSignal;
}

/**
 * A fake DynamoDB client: `send` records the command and answers through `respond`;
 * `dynamo` is the deps' `(region) => client`, recording the regions asked for.
 */
export function fakeDynamo(
  respond: (command: SentCommand) => unknown | Promise<unknown>,
): {
  client: DynamoClient;
  dynamo: (region: string) => DynamoClient;
  sent: SentCommand[];
  regions: string[];
} {
  const sent: SentCommand[] = [];
  const regions: string[] = [];
  const client = {
    send: (
      command: { constructor: { name: string }; input: Record<string, unknown> },
      options?: { beforeRetry?: () => Promise<void>; abortSignal?: AbortSignal },
    ) => {
      const recorded: SentCommand = {
        name: command.constructor.name,
        input: structuredClone(command.input),
        ...(options?.beforeRetry ? { beforeRetry: options.beforeRetry } : {}),
        ...(options?.abortSignal ? { abortSignal: options.abortSignal } : {}),
      };
      sent.push(recorded);
      return Promise.resolve().then(() => respond(recorded));
    },
  };
  const typed = client as unknown as DynamoClient;
  const dynamo = (region: string) => {
    regions.push(region);
    return typed;
  };
  return { client: typed, dynamo, sent, regions };
}

/** An error as the SDK throws it: `name` is the DynamoDB error code. */
export function awsError(name: string, message = `${name} (fake)`): Error {
  return Object.assign(new Error(message), { name });
}

/** A fake clock for the pacing and retries: sleeping moves it, and is recorded. */
export function fakeClock(random = 0.5): PacingDeps & { slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
    random: () => random,
    slept,
  };
}

/**
 * A CPU meter that starts at `usedMs` and counts `perStepMs` for each measured step, and
 * what is charged; `steps` counts the steps. A request's arrival tells it, as it tells
 * the estimating meter, that the isolate is under the runtime's soft limit.
 */
export function fakeCpuMeter(usedMs = 0, perStepMs = 0): CpuMeter & { steps: number } {
  let used = usedMs;
  let ahead = 0;
  const meter = {
    source: "estimate" as const,
    steps: 0,
    usedMs: () => used,
    requestArrived() {
      ahead = aheadAtArrival(used);
    },
    aheadMs: () => ahead,
    measure<T>(step: () => T): T {
      meter.steps++;
      used += perStepMs;
      return step();
    },
    charge(ms: number) {
      used += ms;
    },
  };
  return meter;
}

/** An INSERT stream record of the actions table, as Lambda hands it over. */
export function actionStreamRecord(id: string, seq: string, eventID = `ev-${id}`): StreamRecord {
  return {
    eventID,
    eventName: "INSERT",
    eventSourceARN:
      "arn:aws:dynamodb:us-east-1:000000000000:table/firespring-backdoor-actions-dev/stream/x",
    dynamodb: {
      Keys: { action_id: { S: id } },
      NewImage: { action_id: { S: id }, session_id: { S: `s-${id}` } },
      SequenceNumber: seq,
      ApproximateCreationDateTime: 1770379200,
    },
  } as unknown as StreamRecord;
}

/** An admin's edit of a segment's name (`firespring_segments`, key `s-1`): "Old" to "New". */
export const SEGMENT_NAME_EDIT: WriteBackEdit = {
  id: 7,
  rowKey: { segment_id: "s-1" },
  columns: ["segment_name"],
  before: { segment_name: "Old" },
  after: { segment_name: "New" },
  rangeKey: null,
};
