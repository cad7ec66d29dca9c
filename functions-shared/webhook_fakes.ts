/**
 * What the webhook handler's tests share: a fake database (through the handler's `sql`
 * dependency) that plays `sync.begin_webhook_delivery`, `sync.merge_changes`,
 * `sync.dead_letters` and `sync.note_stream_records`; stream records; signed and
 * unsigned requests; a body that must not be read.
 *
 * @module
 */

import type postgres from "postgres";
import type { WebhookDeps } from "./webhook.ts";
import { RecentWebhookIds } from "./webhook_replays.ts";
import { createWebhookVerifier, signWebhook } from "./webhook_signing.ts";

/** A good secret (32 bytes). */
export const secretA = `whsec_${btoa("a".repeat(32))}`;
/** Another good secret (32 bytes). */
export const secretB = `whsec_${btoa("b".repeat(32))}`;
/** The webhook's address in the tests. */
export const URL_ = "http://localhost/mmp-toledo-sync";

/** A stream record of the segments table, as the Lambda forwards it. */
export function segment(id: string, seq: string, table = "firespring-backdoor-segments-dev") {
  return {
    eventID: crypto.randomUUID(),
    eventName: "INSERT",
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "us-east-1",
    eventSourceARN: `arn:aws:dynamodb:us-east-1:000000000000:table/${table}/stream/2026-02-06`,
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
      Keys: { segment_id: { S: id } },
      NewImage: { segment_id: { S: id }, name: { S: "vip" }, value: { N: "5" } },
      SequenceNumber: seq,
      SizeBytes: 100,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

/** A body of one good record. */
export const oneRecord = JSON.stringify({ records: [segment("s-1", "100")] });

/**
 * A database that plays `sync.begin_webhook_delivery` (ids kept across transactions, undone
 * by a rollback), `sync.merge_changes` (each change counts as applied) and
 * `sync.try_apply_webhook_batch` (all of it in one statement; `refuseData` makes it fail as
 * Postgres does on a change it refuses, SQLSTATE 22P02).
 */
export function fakeDb(
  options: {
    unavailableTimes?: number;
    /** Commits this many batches, then loses the connection before their answer. */
    lostAfterCommitTimes?: number;
    knownIds?: string[];
    refuseData?: boolean;
    /** Fails the merge's statement with this error (a statement timeout, say). */
    mergeError?: Error;
  } = {},
) {
  const deliveries = new Set(options.knownIds ?? []);
  let unavailable = options.unavailableTimes ?? 0;
  let lostAfterCommit = options.lostAfterCommitTimes ?? 0;
  const db = {
    /** Every statement run, in order, across transactions. */
    statements: [] as string[],
    /** Transactions begun (one-statement batches included) / committed. */
    begun: 0,
    committed: 0,
    /** Changes and dead letters of committed transactions. */
    applied: 0,
    deadLettered: 0,
    /** Stream records noted (sync.note_stream_records) by committed transactions. */
    noted: [] as { arn: string; seq: string }[],
    deliveries,
    sql: undefined as unknown as postgres.Sql,
  };
  const begin = async (work: (tx: unknown) => Promise<unknown>) => {
    db.begun++;
    if (unavailable > 0) {
      unavailable--;
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
        code: "ECONNREFUSED",
      });
    }
    const inserted: string[] = [];
    let applied = 0;
    let deadLettered = 0;
    const noted: { arn: string; seq: string }[] = [];
    const tx = {
      unsafe(query: string, params: unknown[], inner = false) {
        if (!inner) db.statements.push(query.replace(/\s+/g, " ").trim());
        if (query.includes("sync.begin_webhook_delivery")) {
          const id = String(params[0]);
          if (deliveries.has(id)) return Promise.resolve([{ recorded: false }]);
          deliveries.add(id);
          inserted.push(id);
          return Promise.resolve([{ recorded: true }]);
        }
        if (query.includes("sync.merge_changes")) {
          if (options.mergeError) return Promise.reject(options.mergeError);
          const changes = JSON.parse(String(params[1])) as unknown[];
          applied += changes.length;
          return Promise.resolve([{ applied: changes.length }]);
        }
        if (query.includes("sync.note_stream_records")) {
          const byStream = JSON.parse(String(params[0])) as Record<string, string[]>;
          const records = Object.entries(byStream).flatMap(([arn, seqs]) =>
            seqs.map((seq) => ({ arn, seq }))
          );
          noted.push(...records);
          return Promise.resolve([{ noted: records.length }]);
        }
        if (query.includes("sync.dead_letters")) {
          deadLettered += (JSON.parse(String(params[0])) as unknown[]).length;
          return Promise.resolve([]);
        }
        throw new Error(`the fake database does not know: ${query}`);
      },
      /** A savepoint of the fake runs its work on the same transaction. */
      savepoint(work: (sp: unknown) => Promise<unknown>) {
        return work(tx);
      },
    };
    try {
      const result = await work(tx);
      db.committed++;
      db.applied += applied;
      db.deadLettered += deadLettered;
      db.noted.push(...noted);
      if (lostAfterCommit === 0) return result;
    } catch (error) {
      for (const id of inserted) deliveries.delete(id);
      throw error;
    }
    lostAfterCommit--;
    throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  };
  /**
   * `sync.try_apply_webhook_batch`: the same statements, in one transaction of their own. Its
   * values come in the statement's text, dollar-quoted (sql_text.ts); what Postgres refuses
   * comes back as the row's failed_state and failed_message, all of it undone.
   */
  const unsafe = (query: string) => {
    if (!query.includes("sync.try_apply_webhook_batch")) {
      throw new Error(`the fake database does not know: ${query}`);
    }
    db.statements.push(query.replace(/\s+/g, " ").trim());
    const params = [...query.matchAll(/\$(q+)\$([\s\S]*?)\$\1\$/g)].map((m) => m[2]);
    const replayed = new Error("replayed");
    return begin(async (tx) => {
      // What the function runs inside: not statements the client sent.
      const run = (q: string, p: unknown[]) =>
        (tx as { unsafe: (q: string, p: unknown[], inner: boolean) => Promise<unknown[]> })
          .unsafe(q, p, true);
      const [first] = await run("select sync.begin_webhook_delivery", [params[0]]);
      if ((first as { recorded: boolean }).recorded !== true) {
        throw replayed; // nothing was written
      }
      if (options.refuseData) {
        throw Object.assign(new Error('invalid input syntax for type integer: "x"'), {
          code: "22P02",
        });
      }
      let applied = 0;
      const byTable = JSON.parse(String(params[1])) as Record<string, unknown[]>;
      for (const [table, changes] of Object.entries(byTable).sort()) {
        const [row] = await run("select sync.merge_changes", [table, JSON.stringify(changes)]);
        applied += (row as { applied: number }).applied;
      }
      if (String(params[2]) !== "{}") await run("select sync.note_stream_records", [params[2]]);
      return [{ replayed: false, applied }];
    }).catch((error) => {
      if (error === replayed) return [{ replayed: true, applied: 0 }];
      // Postgres's errors inside the function are answered, not raised (the statement's
      // text would be logged); a lost or refused connection, or a function missing, is
      // still the driver's error.
      const code = (error as { code?: string }).code;
      if (code && /^[0-9A-Z]{5}$/.test(code) && !/^(08|28|3D|42)/.test(code)) {
        return [{
          replayed: false,
          applied: 0,
          failed_state: code,
          failed_message: (error as Error).message,
        }];
      }
      throw error;
    });
  };
  db.sql = { begin, unsafe } as unknown as postgres.Sql;
  return db;
}

/** The handler's dependencies: a verifier of `setting`, fresh recent ids, the fake's sql. */
export function deps(
  db: ReturnType<typeof fakeDb>,
  setting: string | undefined = secretA,
  extra: Partial<WebhookDeps> = {},
): WebhookDeps {
  return {
    verifier: createWebhookVerifier(setting),
    recentIds: new RecentWebhookIds(),
    sql: db.sql,
    ...extra,
  };
}

/** A POST of `body` with `headers` (JSON content type unless overridden). */
export function post(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  return new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** A request signed with `secret` (the first of a setting). */
export function signed(body: string, secret = secretA, id?: string, at?: Date): Request {
  return post(body, signWebhook(secret, body, id, at));
}

/** A body stream that fails the test if anything reads it. */
export function unreadableBody(): { stream: ReadableStream<Uint8Array>; wasRead: () => boolean } {
  let read = false;
  // highWaterMark 0: nothing is pulled until someone reads.
  const stream = new ReadableStream<Uint8Array>({
    pull() {
      read = true;
      throw new Error("the body must not be read");
    },
  }, { highWaterMark: 0 });
  return { stream, wasRead: () => read };
}

/** An answer's status and JSON body (`error` on refusals, the counts on a 200). */
export async function answer(
  response: Response,
): Promise<{ status: number; body: { error: string; [key: string]: unknown } }> {
  return { status: response.status, body: await response.json() };
}
