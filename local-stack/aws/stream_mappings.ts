/**
 * Which stream each table's event source mapping reads, in the stack's stream poller
 * (local-stack/aws/stream_poller.ts), as Lambda's mappings on AWS.
 *
 * @module
 */

/**
 * The stream each table's mapping reads: made for the table's stream when the poller first
 * finds one (as `terraform apply` makes a mapping for each table's stream ARN,
 * infrastructure/terraform/modules/stream-sync), and tied to it. A mapping never follows a
 * new stream of its table ("to change the stream itself, you must create a new mapping":
 * http://docs.aws.amazon.com/lambda/latest/dg/API_UpdateEventSourceMapping.html): a
 * replaced stream's records go undelivered until the mapping is made again, here when the
 * poller starts again (`npm run stack:up`), and `stream-check` reports the table. A mapping
 * is made only for a stream that is on (Terraform refuses a table whose stream is off).
 * Made again, it reads the new stream alone: Terraform replaces a mapping whose stream
 * changed, and what the old one had not delivered is not delivered (the poller forgets
 * those checkpoints, saying so).
 */
export class StreamMappings {
  readonly #mapped = new Map<string, string>();
  readonly #told = new Set<string>();
  readonly #lookedUpAt = new Map<string, number>();

  /**
   * @param lookUpMs how often the stream of a table that has its mapping is looked up
   * (DescribeTable) to see whether it was replaced; a table without one is looked up at
   * every turn of the poller, so that a mapping is made within a second of its stream.
   */
  constructor(readonly lookUpMs = 10_000) {}

  /** The stream `table`'s mapping reads, if one was made. */
  mapped(table: string): string | undefined {
    return this.#mapped.get(table);
  }

  /**
   * Whether `table`'s stream is to be looked up now: always while it has no mapping, then
   * every `lookUpMs`. Looking up the nine tables every second had cost the stack's poller,
   * proxy and DynamoDB Local about 5 ms of CPU each time (measured with a loop of
   * DescribeTable), 4 % of a core for each stack, to learn what a mapping never follows.
   */
  lookUpDue(table: string, now: number): boolean {
    const at = this.#lookedUpAt.get(table);
    return !this.#mapped.has(table) || at === undefined || now - at >= this.lookUpMs;
  }

  /** `table`'s stream was looked up at `now`. */
  lookedUp(table: string, now: number): void {
    this.#lookedUpAt.set(table, now);
  }

  /**
   * The stream `table`'s mapping reads, given the table's current stream (`latest`,
   * undefined while it has none, and whether it is on); `news` is a line to log, once,
   * when the table's stream is no longer the mapping's.
   */
  streamOf(
    table: string,
    latest: string | undefined,
    on: boolean,
  ): { arn?: string; news?: string } {
    if (latest && on && !this.#mapped.has(table)) this.#mapped.set(table, latest);
    const arn = this.#mapped.get(table);
    if (!arn || !latest || !on || arn === latest || this.#told.has(latest)) return { arn };
    this.#told.add(latest);
    return {
      arn,
      news: `${table}: its stream is now ${latest}, but its mapping reads ${arn}, as a ` +
        `Lambda mapping does: its records are not delivered until a mapping is made for it ` +
        `(terraform apply; here npm run stack:up)`,
    };
  }
}
