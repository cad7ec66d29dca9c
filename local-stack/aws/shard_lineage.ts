/**
 * The shards of one stream as AWS would have them, laid over DynamoDB Local's single
 * shard: the model behind local-stack/aws/stream_shards.ts.
 *
 * AWS: "Shards are ephemeral: They are created and deleted automatically, as needed. Any
 * shard can also split into multiple new shards; this also occurs automatically. (It's
 * also possible for a parent shard to have just one child shard.)"; and a reader must
 * "process a parent shard before it processes a child shard"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html). A shard
 * closes with an `EndingSequenceNumber` in its `SequenceNumberRange`, and its children
 * name it as `ParentShardId`
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Shard.html).
 * DynamoDB Local keeps one open shard per stream, rolled over every 4 hours (its
 * `SHARD_ROLLOVER_TIME`) and never split, so a reader's lineage code would first run on
 * AWS.
 *
 * Here a shard is a window on one of DynamoDB Local's shards: the records after one
 * sequence number (`after`, exclusive) and, once closed, through another (`through`,
 * inclusive), of the keys its splits gave it. Closing the open shards cuts them at the
 * stream's last record; each gets one child (a rollover, as AWS does every few hours) or
 * several that share its keys out by a hash of each key (a split), so that every record of
 * a key stays in one line of shards, in order. The hash is of the whole key (a sort key
 * too): AWS keeps order per item only, and items of one partition key may part when a
 * partition splits by sort key. When DynamoDB Local rolls its own shard over, each open
 * shard closes at its end and gets one child over the new real shard.
 *
 * @module
 */

import { compareDecimal } from "../../functions-shared/dynamo_numbers.ts";
import { iteratorPosition } from "./shard_iterators.ts";

/** One split a shard's keys went through: of `ways` children, the key's hash picks `index`. */
export interface KeyShare {
  ways: number;
  index: number;
  /** Which split this was in the stream (its hash differs from the other splits'). */
  salt: number;
}

/** One shard of the lineage. */
export interface VirtualShard {
  id: string;
  parent?: string;
  /** DynamoDB Local's shard that holds its records. */
  real: string;
  /** Records after this sequence number belong to it ("0": from its real shard's first). */
  after: string;
  /** Closed: its last possible record. */
  through?: string;
  /** The keys it holds: all of its parent's that pass each share. */
  shares: KeyShare[];
}

/**
 * The lineage of one stream, from the real shard that was open when it was first closed
 * (the real shards closed before it are listed as DynamoDB Local has them).
 */
export interface Lineage {
  /** That first real shard's StartingSequenceNumber and ParentShardId. */
  realStart?: string;
  realParent?: string;
  shards: VirtualShard[];
  /** Splits so far (each split's salt). */
  splits: number;
}

/** A shard as DynamoDB Local lists it. */
export interface RealShard {
  ShardId: string;
  ParentShardId?: string;
  SequenceNumberRange?: { StartingSequenceNumber?: string; EndingSequenceNumber?: string };
}

/** A number as DynamoDB Local writes sequence numbers: 21 digits. */
export function padSeq(n: bigint): string {
  return n.toString().padStart(21, "0");
}

/** A new lineage: DynamoDB Local's open shard alone, under its own id. */
export function newLineage(real: RealShard): Lineage {
  return {
    realStart: real.SequenceNumberRange?.StartingSequenceNumber,
    realParent: real.ParentShardId,
    shards: [{ id: real.ShardId, real: real.ShardId, after: "0", shares: [] }],
    splits: 0,
  };
}

/** The shards no record closed yet. */
export function openShards(lineage: Lineage): VirtualShard[] {
  return lineage.shards.filter((shard) => shard.through === undefined);
}

/** A shard id shaped as AWS's: `shardId-` 20 digits `-` 8 hex digits. */
function newShardId(now: number): string {
  const hex = [...crypto.getRandomValues(new Uint8Array(4))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `shardId-${String(now).padStart(20, "0")}-${hex}`;
}

/**
 * Closes every open shard through `cut` (the stream's last record) and gives each `ways`
 * children (1: a rollover; more: a split of its keys). A shard no record came to since it
 * began closes empty (`through` its `after`), as AWS closes idle shards too: it rolls each
 * over every few hours, written to or not.
 */
export function rollOver(lineage: Lineage, cut: string, ways: number, now = Date.now()): Lineage {
  if (!Number.isInteger(ways) || ways < 1 || ways > 4) {
    throw new RangeError(`a shard splits into 1 to 4 children, not ${ways}`);
  }
  const open = openShards(lineage);
  const salt = ways > 1 ? lineage.splits + 1 : lineage.splits;
  // The open shards began together (at one cut), so they close at one place.
  const end = open.length > 0 && compareDecimal(open[0].after, cut) > 0 ? open[0].after : cut;
  const shards = lineage.shards.map((shard) =>
    shard.through === undefined ? { ...shard, through: end } : shard
  );
  for (const parent of open) {
    for (let index = 0; index < ways; index++) {
      shards.push({
        id: newShardId(now),
        parent: parent.id,
        real: parent.real,
        after: end,
        shares: ways === 1 ? parent.shares : [...parent.shares, { ways, index, salt }],
      });
    }
  }
  return { ...lineage, shards, splits: salt };
}

/**
 * Follows DynamoDB Local's own rollover (every 4 hours): the open shards' real shard
 * ended at `ending`, and `next` holds what follows. Each open shard closes there, with
 * one child over `next` that keeps its keys.
 */
export function followRealRollover(
  lineage: Lineage,
  ending: string,
  next: string,
  now = Date.now(),
): Lineage {
  const open = openShards(lineage);
  const shards = lineage.shards.map((shard) =>
    shard.through === undefined ? { ...shard, through: ending } : shard
  );
  for (const parent of open) {
    shards.push({
      id: newShardId(now),
      parent: parent.id,
      real: next,
      after: ending,
      shares: parent.shares,
    });
  }
  return { ...lineage, shards };
}

/** The real shard the open shards read (they all read one). */
export function openReal(lineage: Lineage): string {
  return openShards(lineage)[0].real;
}

/**
 * `lineage` with every rollover of DynamoDB Local's since followed, as `real` (its
 * listing) shows them (`endings`: where each ended), and the real shards from before it.
 */
export function followReal(
  lineage: Lineage,
  real: RealShard[],
): { lineage: Lineage; endings: string[]; before: RealShard[] } {
  const endings: string[] = [];
  for (;;) {
    const current = real.find((s) => s.ShardId === openReal(lineage));
    const ending = current?.SequenceNumberRange?.EndingSequenceNumber;
    const child = real.find((s) => s.ParentShardId === current?.ShardId);
    if (!ending || !child) break;
    lineage = followRealRollover(lineage, ending, child.ShardId);
    endings.push(ending);
  }
  const under = new Set(lineage.shards.map((s) => s.real));
  return { lineage, endings, before: real.filter((s) => !under.has(s.ShardId)) };
}

/** Whether a sequence number lies in `shard`'s range (past its start, up to its end). */
export function inRange(shard: VirtualShard, seq: string): boolean {
  return compareDecimal(seq, shard.after) > 0 &&
    (shard.through === undefined || compareDecimal(seq, shard.through) <= 0);
}

/**
 * What a shard gives of one page of its real shard: its own records, and whether it is
 * read to its end (closed, and the page reached or passed its last record; or its real
 * shard ended, `realNext` undefined). `position`: where the real page's next iterator
 * reads from, when known.
 */
export function windowOf<R extends { dynamodb: { SequenceNumber: string; Keys?: object } }>(
  shard: VirtualShard,
  records: R[],
  realNext: string | undefined,
): { mine: R[]; ended: boolean } {
  const mine = records.filter((r) =>
    holds(shard, r.dynamodb.SequenceNumber, keyTextOf(r.dynamodb.Keys as Record<string, unknown>))
  );
  const position = realNext ? iteratorPosition(realNext) : undefined;
  const through = shard.through;
  const ended = !realNext || (through !== undefined && (
    records.some((r) => compareDecimal(r.dynamodb.SequenceNumber, through) >= 0) ||
    (position !== undefined && compareDecimal(position, through) > 0)
  ));
  return { mine, ended };
}

/**
 * The split's hash of a key: FNV-1a, 32 bits, then MurmurHash3's finaliser (FNV's low bits
 * alone follow the parity of the text's characters, so two splits' shares would agree).
 */
function keyHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** A record's key as one text, whatever the order of its attributes. */
export function keyTextOf(keys: Record<string, unknown> | undefined): string {
  const names = Object.keys(keys ?? {}).sort();
  return JSON.stringify(names.map((name) => [name, keys![name]]));
}

/** Whether a record (its sequence number and key) belongs to `shard`. */
export function holds(shard: VirtualShard, seq: string, keyText: string): boolean {
  return inRange(shard, seq) &&
    shard.shares.every((share) => keyHash(`${share.salt}:${keyText}`) % share.ways === share.index);
}
