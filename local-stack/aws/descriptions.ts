/**
 * DescribeTable and DescribeStream of a table that has had no write since, answered
 * without DynamoDB Local.
 *
 * The stack's stream poller describes each of the nine tables and its stream every
 * second, to find a stream turned on, off or replaced, and a shard that a closed one
 * left (what an event source mapping does on AWS). DynamoDB Local spends 5 ms of its CPU
 * on a DescribeTable and 2.7 ms on a DescribeStream (200 of each, measured), so an idle
 * stack spent 7 % of a core on them, every second of `npm test`, on each of its stacks.
 *
 * What a description says changes with an operation on its table: UpdateTable,
 * DeleteTable, UpdateTimeToLive; a stream's shards with the records written. Its
 * `ItemCount` and `TableSizeBytes` change with the items written, and DynamoDB itself
 * "updates this value approximately every six hours"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html).
 * So an answer is given again while its table has had no write since it was asked
 * (writes counted as for idle polls, local-stack/aws/idle_polls.ts: generously, any
 * operation but the reads) and it is under `refreshMs` old: what DynamoDB Local does on
 * its own (a shard it closes, records past the retention) is seen at most that late, as
 * for idle polls. Only a successful answer is kept: a table not found is asked again.
 * DynamoDB never forgets its tables, but the stack's DynamoDB Local does when it starts
 * again (it keeps them in memory; `npm start` and the benches start a fresh one): every
 * kept answer is dropped when `upstreamEpoch` (its process id) changes.
 *
 * @module
 */

/** The write counts of the tables (local-stack/aws/idle_polls.ts). */
export interface TableWrites {
  /** The writes sent so far to `table` (a namespaced table name). */
  writesTo(table: string): number;
}

/** A kept answer: its table's writes when it was asked, when, and what came back. */
interface Kept {
  writes: number;
  askedAt: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** The kept descriptions of one proxy. */
export class Descriptions {
  #kept = new Map<string, Kept>();
  #epoch: string | undefined;

  /**
   * @param writes the tables' write counts
   * @param upstreamEpoch what changes when DynamoDB Local starts again (its process id)
   * @param refreshMs the longest an answer is given again without DynamoDB Local
   * @param maxKept how many answers are kept (the oldest are forgotten)
   */
  constructor(
    readonly writes: TableWrites,
    readonly upstreamEpoch: () => string,
    readonly refreshMs = 10_000,
    readonly maxKept = 1_000,
  ) {}

  /**
   * The answer to the request `key` (its operation and body) about `table` (a namespaced
   * table name): a kept one while it may be given again, else `ask()`'s (DynamoDB Local's
   * answer, framing headers removed), kept when it succeeded.
   */
  async describe(
    key: string,
    table: string,
    now: number,
    ask: () => Promise<Response>,
  ): Promise<Response> {
    const epoch = this.upstreamEpoch();
    if (epoch !== this.#epoch) this.#kept.clear();
    this.#epoch = epoch;
    const kept = this.#kept.get(key);
    const writes = this.writes.writesTo(table);
    if (kept && kept.writes === writes && now - kept.askedAt < this.refreshMs) {
      return new Response(kept.body.slice(), { status: 200, headers: kept.headers });
    }
    this.#kept.delete(key);
    const response = await ask();
    if (response.status !== 200) return response;
    const body = new Uint8Array(await response.arrayBuffer());
    const headers = [...response.headers];
    this.#kept.set(key, { writes, askedAt: now, headers, body });
    if (this.#kept.size > this.maxKept) this.#kept.delete(this.#kept.keys().next().value!);
    return new Response(body.slice(), { status: 200, headers });
  }
}
