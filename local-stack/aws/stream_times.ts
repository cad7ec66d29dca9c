/**
 * Stream records timed to the second, as AWS times them. A stream record's
 * `ApproximateCreationDateTime` is "the approximate date and time when the stream record
 * was created, in UNIX epoch time format and rounded down to the closest second"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html);
 * DynamoDB Local rounds it down to the minute, which would force the ordering guard's
 * `stream_clock_granularity` to 60 s (docs/sync-semantics.md, "Scan against stream").
 *
 * The DynamoDB proxy (local-stack/aws/proxy.ts) serialises the writes of each key
 * (local-stack/aws/key_locks.ts), reads the key's image consistently before and after each write, and
 * notes here when the write was forwarded and when it was answered ({@link StreamTimes.recordWrite}).
 * A write that changes nothing is not noted: "if you perform a PutItem or UpdateItem
 * operation that does not change any data in an item, DynamoDB Streams does not write a
 * stream record for that operation"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html), and
 * DynamoDB Local writes none either.
 *
 * Each record of a GetRecords answer is then matched to exactly one noted write
 * ({@link StreamTimes.timeRecords}): the same table (from the stream's ARN) and key, the
 * same images (OldImage = the image before, NewImage = the image after, as far as the
 * stream's view type carries them; compared by digest, record_images.ts), noted after the stream was created and no later than
 * DynamoDB Local's own (minute) time allows, and between the writes already matched to the
 * key's earlier and later records (sequence numbers order a key's records as its
 * serialised writes were applied). Only when exactly one write qualifies does the record
 * get that write's second: the second DynamoDB Local answered it in, which is never
 * earlier than the write took effect. AWS's time is the record's creation, so a
 * consistent Scan sent after that time sees the write; the second the proxy forwarded
 * the write can be seconds earlier than DynamoDB Local applied it on a loaded machine,
 * and a record stamped with it told the ordering guard that a Scan which read the item
 * before the write came after it (a deleted observation came back, in `npm start`'s
 * report). Otherwise the record keeps DynamoDB Local's minute and is counted as
 * unmatched. A record read again (a checkpoint
 * re-read, a replay) gets the same time: the match is remembered by sequence number.
 *
 * A write's record can be read before the proxy has noted the write (DynamoDB Local has
 * applied it; the proxy is still reading the image after it), so a GetRecords answer
 * waits until every write in flight when it came is noted ({@link StreamTimes.inFlight},
 * {@link StreamTimes.settled}) before its records are matched.
 *
 * So that the second is exact, a write about to be forwarded within {@link edgeMarginMs}
 * of the next second waits for that second ({@link StreamTimes.delayBeforeForwarding});
 * one whose answer still came in a later second is counted as `straddled` (it gets the
 * later second, its answer's).
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { keyText } from "./history.ts";
import { imageDigest, type WireStreamRecord } from "./record_images.ts";
import { parseStreamArn } from "./stream_arns.ts";

/** What {@link StreamTimes} has done so far (the proxy logs it; tests read it). */
export interface StreamTimeCounts {
  /** Records given the second of their write (a record read again counts again). */
  matched: number;
  /** Records left at DynamoDB Local's minute: no single write matched them. */
  unmatched: number;
  /** Matched writes whose answer came in a later second than they were forwarded in. */
  straddled: number;
  /** The last few unmatched records: table, key, event and sequence number. */
  recentUnmatched: string[];
  /** Of the last {@link UNMATCHED_KEPT} unmatched records, those whose key held the part asked. */
  unmatchedWithKey?: number;
}

/** How many unmatched records are remembered, for a count of those of some keys. */
export const UNMATCHED_KEPT = 10_000;

interface Write {
  forwardedAt: number;
  answeredAt: number;
  before: string;
  after: string;
  /** The stream and sequence number of the record matched to it, once matched. */
  match?: { stream: string; seq: bigint };
}

/** The writes noted for each key and the matches of their stream records. */
export class StreamTimes {
  #writes = new Map<string, Write[]>();
  #counts = { matched: 0, unmatched: 0, straddled: 0 };
  #recentUnmatched: string[] = [];
  #slowest = 0;
  #inFlight = new Set<Promise<void>>();

  /**
   * @param keepMs how long a write is remembered (its record must be read by then to be
   * matched; DynamoDB keeps records 24 h, the stack's poller reads them within seconds).
   */
  constructor(readonly keepMs = 3_600_000) {}

  /**
   * How close to the next second a write may be forwarded: twice the slowest recent
   * write, from 20 to 250 ms.
   */
  edgeMarginMs(): number {
    return Math.min(250, Math.max(20, 2 * this.#slowest));
  }

  /** How long to wait before forwarding a write at `now`, so that it lands within one second. */
  delayBeforeForwarding(now: number): number {
    const intoSecond = ((now % 1000) + 1000) % 1000;
    return intoSecond > 1000 - this.edgeMarginMs() ? 1000 - intoSecond : 0;
  }

  /**
   * Marks a write as in flight, from before it is forwarded until it is noted; call the
   * returned function once it is noted (or failed).
   */
  inFlight(): () => void {
    let done!: () => void;
    const flight = new Promise<void>((resolve) => done = resolve);
    this.#inFlight.add(flight);
    return () => {
      this.#inFlight.delete(flight);
      done();
    };
  }

  /** Resolves once every write in flight now is noted (later writes have no record yet). */
  async settled(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }

  /**
   * Notes a write of one key of `table` (namespaced as the proxy names tables): its images
   * before and after (null: absent), when it was forwarded and when it was answered.
   */
  recordWrite(
    table: string,
    key: Item,
    before: Item | null,
    after: Item | null,
    forwardedAt: number,
    answeredAt: number,
  ): void {
    this.#slowest = Math.max(this.#slowest * 0.95, answeredAt - forwardedAt);
    const write = {
      forwardedAt,
      answeredAt,
      before: imageDigest(before),
      after: imageDigest(after),
    };
    if (write.before === write.after) return;
    const id = `${table}\0${keyText(key)}`;
    const writes = this.#writes.get(id) ?? [];
    writes.push(write);
    this.#writes.set(id, writes);
  }

  /**
   * Gives each record of a GetRecords answer of `stream` (its ARN) the second of its write,
   * in place; `namespace` is the request's account and region, as for writes. Returns how
   * many records were matched and how many were left at DynamoDB Local's minute.
   */
  timeRecords(
    namespace: string,
    stream: string,
    records: WireStreamRecord[],
  ): { matched: number; unmatched: number } {
    const parsed = parseStreamArn(stream);
    const timed = new Map<WireStreamRecord, Write>();
    // A match bounds the key's other records, so match again until nothing more matches.
    for (let progress = parsed !== undefined; progress;) {
      progress = false;
      // One answer holds a contiguous run of the shard: a key's next record in it belongs
      // to the write right after the one its previous record matched.
      const previous = new Map<string, Write>();
      for (const record of records) {
        if (!record.dynamodb?.Keys || !record.dynamodb.SequenceNumber) continue;
        const write = this.#match(
          `${namespace}/${parsed!.table}`,
          stream,
          parsed!.createdAt,
          record,
          previous,
        );
        if (write && !timed.has(record)) {
          timed.set(record, write);
          progress = true;
        }
      }
    }
    for (const [record, write] of timed) {
      record.dynamodb!.ApproximateCreationDateTime = Math.floor(write.answeredAt / 1000);
    }
    const matched = timed.size;
    const unmatched = records.length - matched;
    for (const record of records.filter((r) => !timed.has(r))) {
      this.#recentUnmatched.push(
        `${namespace}/${parsed?.table} ${JSON.stringify(record.dynamodb?.Keys)} ` +
          `${record.eventName} ${record.dynamodb?.SequenceNumber}`,
      );
    }
    this.#recentUnmatched.splice(0, Math.max(0, this.#recentUnmatched.length - UNMATCHED_KEPT));
    this.#counts.matched += matched;
    this.#counts.unmatched += unmatched;
    return { matched, unmatched };
  }

  /**
   * The counts so far, with the last few unmatched records; with `keyPart`, also how many
   * of the last {@link UNMATCHED_KEPT} unmatched records' keys hold it (a test's own keys,
   * whatever records of other tests the poller reads meanwhile).
   */
  counts(keyPart?: string): StreamTimeCounts {
    return {
      ...this.#counts,
      recentUnmatched: this.#recentUnmatched.slice(-10),
      ...(keyPart === undefined
        ? {}
        : { unmatchedWithKey: this.#recentUnmatched.filter((r) => r.includes(keyPart)).length }),
    };
  }

  /** Forgets writes older than `keepMs`. */
  sweep(now: number): void {
    for (const [id, writes] of this.#writes) {
      const kept = writes.filter((write) => write.answeredAt > now - this.keepMs);
      if (kept.length === 0) this.#writes.delete(id);
      else if (kept.length < writes.length) this.#writes.set(id, kept);
    }
  }

  /** How many writes are remembered (for tests and logs). */
  size(): number {
    let n = 0;
    for (const writes of this.#writes.values()) n += writes.length;
    return n;
  }

  #match(
    table: string,
    stream: string,
    streamCreatedAt: number,
    record: WireStreamRecord,
    previous: Map<string, Write>,
  ): Write | undefined {
    const data = record.dynamodb!;
    const id = `${table}\0${keyText(data.Keys!)}`;
    const writes = this.#writes.get(id);
    if (!writes) return undefined;
    const seq = BigInt(data.SequenceNumber!);
    // Matched before (a record read again): the same write.
    const known = writes.find((w) => w.match?.stream === stream && w.match.seq === seq);
    if (known) {
      previous.set(id, known);
      return known;
    }
    // Only the writes between those matched to the key's earlier and later records.
    let from = 0;
    let to = writes.length;
    writes.forEach((w, i) => {
      if (w.match?.stream !== stream) return;
      if (w.match.seq < seq) from = i + 1;
      else if (to === writes.length) to = i;
    });
    const view = data.StreamViewType ?? "NEW_AND_OLD_IMAGES";
    const old = view === "OLD_IMAGE" || view === "NEW_AND_OLD_IMAGES"
      ? imageDigest(data.OldImage)
      : undefined;
    const now = view === "NEW_IMAGE" || view === "NEW_AND_OLD_IMAGES"
      ? imageDigest(data.NewImage)
      : undefined;
    const localMs = (data.ApproximateCreationDateTime ?? Infinity) * 1000;
    const before = previous.get(id);
    const next = before ? writes.indexOf(before) + 1 : -1;
    const window = before
      ? writes.slice(Math.max(from, next), Math.min(to, next + 1))
      : writes.slice(from, to);
    const candidates = window.filter((w) =>
      !w.match &&
      w.forwardedAt >= streamCreatedAt &&
      // DynamoDB Local's time (rounded down to the minute) of a write answered by then.
      localMs <= w.answeredAt && localMs > w.forwardedAt - 60_000 &&
      (old === undefined || old === w.before) &&
      (now === undefined || now === w.after) &&
      (record.eventName !== "INSERT" || w.before === "absent") &&
      (record.eventName !== "REMOVE" || w.after === "absent") &&
      (record.eventName !== "MODIFY" || (w.before !== "absent" && w.after !== "absent"))
    );
    if (candidates.length !== 1) return undefined;
    const write = candidates[0];
    write.match = { stream, seq };
    previous.set(id, write);
    if (Math.floor(write.forwardedAt / 1000) !== Math.floor(write.answeredAt / 1000)) {
      this.#counts.straddled++;
    }
    return write;
  }
}
