/**
 * The capacity one table operation takes under `throttle_rcu` (capacity.ts) and
 * `throttle_wcu` (write_capacity.ts), from before the DynamoDB proxy
 * (local-stack/aws/proxy.ts) forwards it to once it is answered: admitted or refused by
 * its tables' buckets, units held meanwhile, DynamoDB Local asked for what it consumed,
 * and the units settled with that (a refusal with its failed condition's charge,
 * failed_conditions.ts). The client gets ConsumedCapacity only if it asked for it, and a
 * batch's requests held back in its UnprocessedItems.
 *
 * @module
 */

import {
  type CapacityThrottle,
  MIN_READ_UNITS,
  Reservation,
  throughputExceeded,
  unitsByTable,
} from "./capacity.ts";
import { WRITE_OPERATIONS } from "./errors.ts";
import { askingForConditionItem, failedConditionCharge } from "./failed_conditions.ts";
import type { KeyAttribute } from "./key_schema.ts";
import { READ_OPERATIONS } from "./operations.ts";
import type { Body } from "./stale_reads.ts";
import {
  type RequestItems,
  withUnprocessed,
  type WriteCapacity,
  writeCharges,
} from "./write_capacity.ts";

/** The proxy's capacity, by table: each table's bucket keyed `scope/table`. */
export interface CapacityLimits {
  /** Read capacity, when `throttle_rcu` is on. */
  reads: CapacityThrottle | undefined;
  /** Write capacity, when `throttle_wcu` is on. */
  writes: WriteCapacity | undefined;
  now: () => number;
}

/** Why an operation was not admitted: the body of its HTTP 400, and a line to log. */
export interface CapacityRefusal {
  answer: string;
  log: string;
}

/**
 * The capacity of one table `operation` with the client's parsed `body`: {@link admit}
 * it, forward {@link request}, then {@link refused} or {@link answered} once DynamoDB
 * Local answers, and {@link release} in any case (nothing once settled).
 */
export class OperationCapacity {
  /** What goes on to DynamoDB Local: `body`, or a batch's part its write capacity admits. */
  sent: Body;
  /** A batch's requests held back, for its UnprocessedItems. */
  held: RequestItems = {};
  /** The units held until answered. */
  #reservation: Reservation | undefined;
  readonly #isRead: boolean;
  readonly #isWrite: boolean;
  /** Whether the client asked for ConsumedCapacity. */
  readonly #asked: boolean;
  /** Whether its cost is counted: a read under `throttle_rcu`, a write under `throttle_wcu`. */
  readonly counted: boolean;

  constructor(readonly limits: CapacityLimits, readonly operation: string, readonly body: Body) {
    this.sent = body;
    this.#isRead = READ_OPERATIONS.has(operation);
    this.#isWrite = WRITE_OPERATIONS.has(operation);
    this.#asked = body.ReturnConsumedCapacity === "TOTAL" ||
      body.ReturnConsumedCapacity === "INDEXES";
    this.counted = (this.#isRead && limits.reads !== undefined) ||
      (this.#isWrite && limits.writes !== undefined);
  }

  /**
   * Admits the operation on `tables` (of `scope`), holding the units it takes at once, or
   * refuses it when a table's capacity is spent. A read holds the least a read costs from
   * each table; a write is admitted by {@link WriteCapacity.admit} (`keySchema` gives a
   * table's key attributes, known beforehand for a BatchWriteItem).
   */
  admit(
    scope: string,
    tables: string[],
    keySchema: (table: string) => KeyAttribute[] | undefined,
  ): CapacityRefusal | undefined {
    const { reads, writes, now } = this.limits;
    if (this.#isRead && reads) {
      const empty = tables.find((t) => !reads.bucket(`${scope}/${t}`, now()).admit(now()));
      if (empty) {
        return {
          answer: throughputExceeded(empty),
          log: `${this.operation} ${empty}: read capacity spent, throttled`,
        };
      }
      this.#reservation = new Reservation((t) => reads.bucket(`${scope}/${t}`, now()), now);
      for (const t of tables) this.#reservation.hold(t, MIN_READ_UNITS);
    }
    if (this.#isWrite && writes) {
      const admitted = writes.admit(this.operation, this.body, scope, keySchema);
      if ("refused" in admitted) {
        return {
          answer: admitted.refused,
          log: `${this.operation} ${tables.join(", ")}: write capacity spent, throttled`,
        };
      }
      ({ forward: this.sent, held: this.held, reservation: this.#reservation } = admitted);
    }
    return undefined;
  }

  /**
   * The request to forward: {@link sent}, asking for ConsumedCapacity when counted, and
   * under `throttle_wcu` for the item a failed condition meets (failed_conditions.ts).
   */
  request(): Body {
    const counting: Body = this.counted && !this.#asked
      ? { ...this.sent, ReturnConsumedCapacity: "TOTAL" }
      : this.sent;
    return this.limits.writes ? askingForConditionItem(this.operation, counting) : counting;
  }

  /** Settles a refusal (`text`, DynamoDB Local's): only a failed condition costs anything. */
  refused(text: string): void {
    this.#reservation?.settle(failedConditionCharge(this.operation, this.sent, text));
  }

  /**
   * Settles a counted operation's answer (`json`, which it changes for the client):
   * ConsumedCapacity dropped unless asked for, a batch's held requests added to its
   * UnprocessedItems. Whether it added any (ConsumedCapacity dropped is no change to
   * the client's request: it was asked for here).
   */
  answered(json: Body): boolean {
    if (this.#isRead && this.limits.reads) {
      this.#reservation?.settle(unitsByTable(json.ConsumedCapacity));
      if (!this.#asked) delete json.ConsumedCapacity;
    }
    if (this.#isWrite && this.limits.writes) {
      this.#reservation?.settle(writeCharges(this.operation, this.sent, json));
      if (!this.#asked) delete json.ConsumedCapacity;
      if (Object.keys(this.held).length > 0) {
        json.UnprocessedItems = withUnprocessed(json.UnprocessedItems, this.held);
        return true;
      }
    }
    return false;
  }

  /** Gives back the units held, unless settled: for a request that cost nothing. */
  release(): void {
    this.#reservation?.release();
  }
}
