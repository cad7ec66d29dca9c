/**
 * Read capacity, counted and throttled as AWS does for a provisioned table
 * (`throttle_rcu` of DYNAMODB_FAULTS, local-stack/aws/faults.ts).
 *
 * Counting. AWS's Developer Guide ("DynamoDB read and write operations", capacity unit
 * consumption for reads): a strongly consistent read of up to 4 KB costs one read unit, an
 * eventually consistent one half; GetItem rounds the item up to the next 4 KB; BatchGetItem
 * rounds each item up, then adds; Query and Scan add the sizes of all items read (before
 * any filter or projection, "DynamoDB determines capacity units consumed based on item
 * size, not on the amount of data that is returned") and round the sum up once. Item sizes
 * follow "DynamoDB item sizes and formats" (`itemSize` below). DynamoDB Local already
 * returns `ConsumedCapacity` computed this way (checked by hand: a 10 KB item read
 * eventually consistently with a projection costs 1.5, a Select COUNT Scan of 10.2 KB
 * costs 1.5, a consistent Scan of it 3.0), including for what a projection or COUNT hides
 * from the proxy; so the proxy always asks DynamoDB Local for it and charges exactly that
 * (`unitsByTable`), and the client sees the same numbers when it asked.
 *
 * Throttling. A token bucket per table refilled at `throttle_rcu` per second holding up to
 * `burst_s` seconds of unused capacity: by default one, the contract's rule (reads beyond
 * `throttle_rcu` per second are throttled), stricter than AWS, which "currently retains
 * up to 5 minutes (300 seconds) of unused read and write capacity" (AWS knowledge center,
 * "burst capacity"; `burst_s=300` is that, and {@link BURST_SECONDS} its bound). Kept
 * capacity would let a sync that reads faster than its budget pass for minutes after a
 * quiet spell. A bucket starts with one second of capacity: a table the proxy has just
 * met has saved nothing it can prove, and a stand-in must never be kinder than the
 * service. As on AWS,
 * the cost of a read is known only after it ran, so a read is admitted while the bucket
 * is above zero and charged afterwards (the bucket may go below zero, and reads are
 * refused until the refill brings it back).
 *
 * Requests in flight at once. Charged only once answered, two requests admitted together
 * would each find the whole bucket. So an admitted request takes at once what it is sure
 * to cost (a {@link Reservation}: a read the least any read costs, `MIN_READ_UNITS`, per
 * table; a write its expected units, write_capacity.ts) and, once answered, is charged
 * the difference between its cost and that; a request refused, or that fails, before it
 * cost anything gets it back. One after another, the bucket ends where charging after
 * alone left it; at once, the second sees what the first took.
 *
 * @module
 */

/** A DynamoDB attribute value in the JSON protocol's form. */
export type AttributeValue = Record<string, unknown>;
/** An item: attribute name → value. */
export type Item = Record<string, AttributeValue>;

/** The most seconds of unused capacity a table keeps: AWS's burst (`burst_s` is 1 to it). */
export const BURST_SECONDS = 300;

const utf8 = (s: string) => new TextEncoder().encode(s).length;

function numberSize(text: string): number {
  // "1 byte per two significant digits, plus 1 byte"; leading and trailing zeroes trimmed.
  const digits = text.replace(/^[-+]/, "").replace(/e.*$/i, "").replace(".", "")
    .replace(/^0+/, "").replace(/0+$/, "");
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

function valueSize(value: AttributeValue): number {
  const [type, v] = Object.entries(value)[0] ?? ["NULL", true];
  switch (type) {
    case "S":
      return utf8(v as string);
    case "N":
      return numberSize(v as string);
    case "B":
      return atob(v as string).length;
    case "BOOL":
    case "NULL":
      return 1;
    case "SS":
      return (v as string[]).reduce((n, s) => n + utf8(s), 0);
    case "NS":
      return (v as string[]).reduce((n, s) => n + numberSize(s), 0);
    case "BS":
      return (v as string[]).reduce((n, s) => n + atob(s).length, 0);
    case "L":
      // 3 bytes for the list, 1 more per element.
      return 3 + (v as AttributeValue[]).reduce((n, e) => n + 1 + valueSize(e), 0);
    case "M":
      return 3 + Object.entries(v as Item).reduce((n, [k, e]) => n + 1 + utf8(k) + valueSize(e), 0);
    default:
      return 0;
  }
}

/** An item's size in bytes as AWS counts it ("DynamoDB item sizes and formats"). */
export function itemSize(item: Item): number {
  return Object.entries(item).reduce((n, [name, value]) => n + utf8(name) + valueSize(value), 0);
}

/**
 * Read units of a request that read items of these sizes: per item for GetItem and
 * BatchGetItem, summed and rounded once for Query and Scan; halved when eventually
 * consistent. A read that finds nothing still costs one 4 KB unit.
 */
export function readUnits(sizes: number[], consistent: boolean, perItem: boolean): number {
  const KB4 = 4096;
  const blocks = perItem
    ? sizes.reduce((n, s) => n + Math.max(1, Math.ceil(s / KB4)), 0)
    : Math.max(1, Math.ceil(sizes.reduce((a, b) => a + b, 0) / KB4));
  return Math.max(blocks, 1) * (consistent ? 1 : 0.5);
}

/**
 * The read units per table of a response's `ConsumedCapacity` (an object for GetItem,
 * Query and Scan, a list for BatchGetItem and the transactions).
 */
export function unitsByTable(consumed: unknown): Map<string, number> {
  const units = new Map<string, number>();
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  for (const entry of list as { TableName?: string; CapacityUnits?: number }[]) {
    if (entry.TableName && typeof entry.CapacityUnits === "number") {
      units.set(entry.TableName, (units.get(entry.TableName) ?? 0) + entry.CapacityUnits);
    }
  }
  return units;
}

/** A table's capacity: a token bucket in read units (or in write units, write_capacity.ts). */
export class CapacityBucket {
  #tokens: number;
  #at: number;
  /**
   * Units taken for requests still in flight ({@link Reservation}): they count against
   * the 300 seconds a bucket holds, as they would had the request been charged only once
   * answered, so a refill meanwhile does not forgive them.
   */
  #held = 0;
  /** `burstSeconds`: the seconds of unused capacity it keeps (1 to {@link BURST_SECONDS}). */
  constructor(readonly perSecond: number, now: number, readonly burstSeconds = 1) {
    this.#tokens = perSecond;
    this.#at = now;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#at) / 1000;
    this.#tokens = Math.min(
      this.perSecond * this.burstSeconds - this.#held,
      this.#tokens + elapsed * this.perSecond,
    );
    this.#at = now;
  }

  /** Whether a request may start now (the bucket is above zero). */
  admit(now: number): boolean {
    this.#refill(now);
    return this.#tokens > 0;
  }

  /**
   * Takes what a finished request cost; negative `units` give back (what was held for a
   * request that cost less), never past the 300 seconds a bucket holds.
   */
  charge(units: number, now: number): void {
    this.#refill(now);
    this.#tokens = Math.min(
      this.perSecond * this.burstSeconds - this.#held,
      this.#tokens - units,
    );
  }

  /** Takes `units` for a request in flight (a {@link Reservation}'s hold). */
  hold(units: number, now: number): void {
    this.charge(units, now);
    this.#held += units;
  }

  /** The request holding `units` was answered: they are its own charge now. */
  unhold(units: number): void {
    this.#held = Math.max(0, this.#held - units);
  }

  /** The units left (for tests and logs). */
  tokens(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }
}

/** One bucket per table, made on first use; `perSecond` units each, `burstSeconds` kept. */
export class CapacityThrottle {
  #buckets = new Map<string, CapacityBucket>();
  constructor(readonly perSecond: number, readonly burstSeconds = 1) {}

  /** The bucket of `table` (its scope and name), made full for one second when new. */
  bucket(table: string, now: number): CapacityBucket {
    let bucket = this.#buckets.get(table);
    if (!bucket) {
      bucket = new CapacityBucket(this.perSecond, now, this.burstSeconds);
      this.#buckets.set(table, bucket);
    }
    return bucket;
  }
}

/** The least a read costs: an eventually consistent one of up to 4 KB, or of nothing. */
export const MIN_READ_UNITS = 0.5;

/**
 * Units taken from tables' buckets for one request in flight, before its cost is known:
 * {@link hold} as it is admitted, then {@link settle} once answered (or {@link release}
 * when it cost nothing), so that requests admitted at once do not each find the whole
 * bucket. `bucket` gives a table's bucket (the proxy's key is `scope/table`).
 */
export class Reservation {
  #held = new Map<string, number>();
  #open = true;
  constructor(
    readonly bucket: (table: string) => CapacityBucket,
    readonly now: () => number,
  ) {}

  /** Takes `units` from `table`'s bucket now. */
  hold(table: string, units: number): void {
    this.bucket(table).hold(units, this.now());
    this.#held.set(table, (this.#held.get(table) ?? 0) + units);
  }

  /** What is held from `table`'s bucket (for tests and logs). */
  held(table: string): number {
    return this.#open ? this.#held.get(table) ?? 0 : 0;
  }

  /**
   * Charges each table what the request cost (`units`, by table name), less what was held
   * from it: a table held and not in `units` gets its units back. Once: later calls, and
   * {@link release}, do nothing.
   */
  settle(units: ReadonlyMap<string, number>): void {
    if (!this.#open) return;
    this.#open = false;
    for (const table of new Set([...this.#held.keys(), ...units.keys()])) {
      const held = this.#held.get(table) ?? 0;
      const bucket = this.bucket(table);
      bucket.unhold(held);
      const difference = (units.get(table) ?? 0) - held;
      if (difference !== 0) bucket.charge(difference, this.now());
    }
  }

  /** Gives back everything held, unless settled already (a request that cost nothing). */
  release(): void {
    this.settle(new Map());
  }
}

/**
 * AWS's message for a table whose provisioned capacity is spent: the exception's (below)
 * and a throttled transaction's `ProvisionedThroughputExceeded` reason (write_capacity.ts).
 */
export const THROUGHPUT_EXCEEDED_MESSAGE =
  "The level of configured provisioned throughput for the table was exceeded. " +
  "Consider increasing your provisioning level with the UpdateTable API.";

/** The body AWS sends with HTTP 400 when a table's read (or write) capacity is spent. */
export function throughputExceeded(table: string): string {
  return JSON.stringify({
    __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    message: `${THROUGHPUT_EXCEEDED_MESSAGE} (table ${table})`,
  });
}
