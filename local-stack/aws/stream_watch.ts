/**
 * What lets the stack's stream poller leave out the polls of an idle shard.
 *
 * Lambda's mappings poll each shard four times a second (local-stack/aws/stream_poller.ts),
 * and so does the poller. Each poll is an HTTP request that the poller signs and the proxy
 * checks, passes through its layers and answers: about 1.5 ms of the poller's CPU and 1.1
 * ms of the proxy's, 36 polls a second for the nine tables' shards, so an idle stack spent
 * about a tenth of a core on them (measured over a minute: the poller 3.4 s of CPU, the
 * proxy 2.4 s), twice over in `npm test`'s two stacks.
 *
 * So the proxy tells the poller of every write as it forwards it and again once it has
 * answered it (`GET /_stack/stream-writes`, a long poll answered at the next change or
 * after {@link WATCH_WAIT_MS}; IdlePolls.began, IdlePolls.watch), and a shard's poll is
 * left out while its last one came back empty, nothing was begun or answered on its table
 * since that poll was sent, and it was sent less than {@link IDLE_REFRESH_MS} ago. Records
 * appear as soon as before: the poller hears of a write before DynamoDB Local has its
 * record, so every tick from then on polls. What DynamoDB Local does on its own (a TTL
 * deletion, a shard it closes) is seen at the latest twice {@link IDLE_REFRESH_MS} late
 * (the last poll may have been answered by the proxy from memory, itself up to that old:
 * local-stack/aws/idle_polls.ts); the stack's own paths (a trim, a shard closed or split)
 * count as writes to every table, so they are seen at once. While the proxy cannot be
 * asked, every poll is sent.
 *
 * The mapping still reads the shard on AWS while the poller leaves its polls out: its reads
 * carry {@link MAPPING_HEADER} with the proxy's instance, and the proxy counts it as one
 * reader of the shard while its watch is on (local-stack/aws/shard_readers.ts), never less
 * than AWS would.
 *
 * @module
 */

import type { WriteCounts } from "./idle_polls.ts";

/** The proxy's path that answers the writes it counted. */
export const STREAM_WRITES_PATH = "/_stack/stream-writes";
/** The header the poller's reads carry (the stack's own: not a client's to send). */
export const MAPPING_HEADER = "x-stack-event-source-mapping";
/** The longest a shard's polls are left out, from the last one sent. */
export const IDLE_REFRESH_MS = 10_000;
/** The longest the proxy holds a watch before answering it unchanged. */
export const WATCH_WAIT_MS = 20_000;

/** A shard's last empty poll: what its table's writes were when it was sent, and when. */
export interface IdlePoll {
  mark: string;
  sentAt: number;
}

/** What the watch needs: fakes in the tests. */
export interface WatchDeps {
  /** The proxy's counts once they differ from `seen` (a long poll). */
  ask(seen: WriteCounts | undefined): Promise<WriteCounts>;
  sleep(ms: number): Promise<void>;
}

/** The poller's view of the proxy's writes. */
export class StreamWatch {
  #latest?: WriteCounts;
  #stopped = false;
  #changed = Promise.withResolvers<void>();

  constructor(readonly deps: WatchDeps, readonly refreshMs = IDLE_REFRESH_MS) {}

  /**
   * Keeps the view current, one long poll at a time, until {@link stop}: when the proxy
   * cannot be asked, the view is unknown (every poll is sent) and asked again a second later.
   */
  async run(): Promise<void> {
    while (!this.#stopped) {
      try {
        this.#latest = await this.deps.ask(this.#latest);
        this.#tellChanged();
      } catch {
        this.#latest = undefined;
        this.#tellChanged();
        await this.deps.sleep(1_000);
      }
    }
  }

  /** Ends {@link run} once its current long poll is answered. */
  stop(): void {
    this.#stopped = true;
    this.#tellChanged();
  }

  /**
   * Resolves at the view's next change: the proxy answered (a write to some table, or
   * its long poll's time ran out), or it cannot be asked, or the watch stopped. A shard
   * whose polls are left out waits for this (or for its refresh) instead of a clock.
   */
  nextChange(): Promise<void> {
    return this.#changed.promise;
  }

  #tellChanged(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /**
   * The proxy's instance, once the watch knows it: the value of the poller's
   * {@link MAPPING_HEADER}, which the proxy honours from no one else.
   */
  get instance(): string | undefined {
    return this.#latest?.instance;
  }

  /** `table`'s writes as far as the poller knows, undefined while it does not. */
  mark(table: string): string | undefined {
    const latest = this.#latest;
    if (!latest) return undefined;
    return `${latest.instance} ${latest.tables[table] ?? 0} ${latest.everywhere}`;
  }

  /** Whether a poll of `table`'s shard, whose last poll was `idle`, may be left out at `now`. */
  mayLeaveOut(table: string, idle: IdlePoll | undefined, now: number): boolean {
    if (!idle || now - idle.sentAt >= this.refreshMs) return false;
    const mark = this.mark(table);
    return mark !== undefined && mark === idle.mark;
  }
}

/** The watch of the proxy at `endpoint` (the stack's DYNAMODB_ENDPOINT). */
export function proxyWatch(endpoint: string): StreamWatch {
  return new StreamWatch({
    async ask(seen) {
      const url = new URL(STREAM_WRITES_PATH, endpoint);
      if (seen) {
        url.searchParams.set("instance", seen.instance);
        url.searchParams.set("version", String(seen.version));
      }
      const response = await fetch(url, { signal: AbortSignal.timeout(WATCH_WAIT_MS + 10_000) });
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return await response.json() as WriteCounts;
    },
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
}
